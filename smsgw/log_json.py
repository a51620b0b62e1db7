"""JSON lines for the log: one event per line, for a log pipeline to index.

Each line holds ``ts`` (UTC, ISO 8601, ms), ``level``, ``logger``, ``process`` (pid),
``host``, ``message``, ``message_id`` when the line concerns one message (given as
``extra={"message_id": …}`` or set for the task in ``gateway.log_context``), the
other ``extra`` fields of the call as they are, and ``exc`` for a traceback. Strings
are scrubbed of phone numbers (``smsgw.log_masking`` has already scrubbed the message
itself); texts cannot be recognised, so call sites never log them. Non-ASCII is kept
as it is (``ensure_ascii=False``): a Cyrillic line stays readable, and stays visible
to the leak scanners.
"""

from __future__ import annotations

import json
import logging
import socket
from datetime import UTC, datetime
from typing import Any

from gateway.core.masking import scrub
from gateway.log_context import MESSAGE_ID

# What every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._host = socket.gethostname()

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "host": self._host,
            "message": scrub(record.getMessage()),
        }
        message_id = getattr(record, "message_id", None) or MESSAGE_ID.get()
        if message_id is not None:
            event["message_id"] = str(message_id)  # 19 digits: a string keeps it exact in JS
        event.update(_extra(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            event["exc"] = scrub(record.exc_text)
        return json.dumps(event, ensure_ascii=False, default=str)


def _timestamp(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: scrub(value) if isinstance(value, str) else value
        for key, value in vars(record).items()
        if key not in _STANDARD and key != "message_id"
    }
