"""JSON log lines: one event per line, the message id on it, personal data masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.config_schema import ConfigError
from gateway.log_context import MESSAGE_ID
from gateway.settings import load
from smsgw.log_json import JsonFormatter
from smsgw.log_masking import ScrubNumbers

MESSAGE = 1180591620717411303


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing JSON lines through the entry point's handler filter."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ScrubNumbers())
    logger = logging.getLogger("gateway.tests_json")
    logger.propagate = False  # planted numbers must not reach the session's log scan
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield logger, out
    finally:
        logger.removeHandler(handler)


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_has_the_fields_and_the_extra_event_fields(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = logged
    logger.info("status %s", "delivered", extra={"message_id": MESSAGE, "provider": "smsc"})
    (line,) = _lines(out)
    assert line["level"] == "INFO" and line["logger"] == "gateway.tests_json"
    assert line["message"] == "status delivered" and line["provider"] == "smsc"
    assert line["message_id"] == str(MESSAGE)  # a string: exact in any JSON reader
    assert line["ts"].endswith("+00:00") and isinstance(line["process"], int)


def test_the_task_s_message_id_reaches_lines_that_do_not_name_it(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = logged
    token = MESSAGE_ID.set(MESSAGE)
    try:
        logger.debug("refused by the provider")
    finally:
        MESSAGE_ID.reset(token)
    logger.info("not about a message")
    first, second = _lines(out)
    assert first["message_id"] == str(MESSAGE)
    assert "message_id" not in second


def test_numbers_are_masked_in_the_message_the_fields_and_the_traceback(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = logged
    try:
        raise ValueError("bad number 8 921 123-45-67")
    except ValueError:
        logger.exception("to %s failed", "+79211234567", extra={"detail": "+7 921 123 45 67"})
    text = out.getvalue()
    assert len(text.splitlines()) == 1  # the traceback stays inside the one line
    (line,) = _lines(out)
    assert "+79*******67" in line["message"] and "Traceback" in line["exc"]
    for leaked in ("+79211234567", "123-45-67", "921 123 45 67"):
        assert leaked not in text


def test_cyrillic_stays_readable(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = logged
    logger.warning("провайдер недоступен")
    assert "провайдер недоступен" in out.getvalue()


def test_log_format_is_a_setting_and_an_environment_override(tmp_path: Any) -> None:
    config = tmp_path / "gw.toml"
    config.write_text('log_format = "json"\n')
    assert load(config, {}).log_format == "json"
    assert load(None, {}).log_format == "text"
    assert load(None, {"SMSGW_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(ConfigError, match="SMSGW_LOG_FORMAT"):
        load(None, {"SMSGW_LOG_FORMAT": "xml"})
    config.write_text('log_format = "yaml"\n')
    with pytest.raises(ConfigError, match="log_format"):
        load(config, {})
