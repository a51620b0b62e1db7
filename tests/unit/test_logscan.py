"""The log scanner catches planted leaks and leaves ids, timestamps and masked numbers alone."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.masking import find_phones, mask_phone, scrub
from tests.logscan import CANARY, LeakCollector, leaks_in, scan_files

PLANTED = [
    "sim: message 118 to +79211234567 refused: 0x0000000b",
    "POST /v1/opt-outs/+7%20921 path /v1/opt-outs/+7 921 123-45-67",
    "GET /v1/rates?to=89211234567&parts=1",
    "not a valid phone number: 8 (921) 123-45-67",
    "from 7-921-123-45-67 inbound",
    "uk +44 20 7946 0958",
]
INNOCENT = [
    "message 1180591620717411303 submitted at 1732371234567",
    "inbound 7: +792*******67 opted out",
    "started PostgreSQL (pid 81234) on 127.0.0.1:54321",
    "provider id 0x7921123456a, hex 9f79211234567ab",
    "2026-11-23 15:34:09,123 INFO gateway.run[4242] smsgw running",
    "batch of 1000 failed after 79211 ms",
]


@pytest.mark.parametrize("line", PLANTED)
def test_a_planted_number_is_caught_and_reported_masked(line: str) -> None:
    reported = leaks_in(line)
    assert reported is not None
    assert next(find_phones(reported), None) is None


@pytest.mark.parametrize("line", INNOCENT)
def test_ids_timestamps_and_masked_numbers_are_not_flagged(line: str) -> None:
    assert leaks_in(line) is None


def test_a_registered_text_and_the_canary_are_caught_and_masked() -> None:
    text = "Ваш код: 4821, никому"
    reported = leaks_in(f"submit failed for {text!r}", [text])
    assert reported is not None and text not in reported
    canary = leaks_in(f"body was 'Привет, {CANARY.upper()}!'")
    assert canary is not None and CANARY not in canary.lower()


def test_the_collector_catches_a_leak_logged_at_debug() -> None:
    collector = LeakCollector()
    logger = logging.getLogger("tests.logscan.planted")
    logger.propagate = False  # the planted leak must not fail the session's own scan
    logger.addHandler(collector)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("to %s", "+79211234567")
        logger.debug("message %d ok", 1180591620717411303)
    finally:
        logger.removeHandler(collector)
    lines = [leak.line for leak in collector.leaks]
    assert lines == ["DEBUG tests.logscan.planted to +79*******67"]


ru_subscriber = st.integers(min_value=900_000_0000, max_value=999_999_9999).map(str)


@given(ru_subscriber, st.sampled_from(["+7{}", "8{}", "7{}", "+7 {}", "8 ({}"]))
def test_every_written_form_of_a_russian_number_is_found(number: str, form: str) -> None:
    if form.endswith("({}"):
        written = f"8 ({number[:3]}) {number[3:6]}-{number[6:8]}-{number[8:]}"
    else:
        written = form.format(number)
    line = f"to {written} refused"
    assert next(find_phones(line), None) is not None
    assert next(find_phones(scrub(line)), None) is None


@given(st.integers(min_value=10**18, max_value=2**63 - 1))
def test_no_message_id_is_a_number(message_id: int) -> None:
    assert leaks_in(f"message {message_id} submitted; provider id {message_id:x}") is None


@given(ru_subscriber)
def test_a_masked_number_is_not_a_number(number: str) -> None:
    assert leaks_in(f"to {mask_phone('+7' + number)}") is None


def test_a_spawned_process_log_is_scanned(tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    log.write_text("INFO gateway.run[7] smsgw running\nWARNING x: to 8 921 123 45 67 failed\n")
    assert [leak.line for leak in scan_files([log, tmp_path / "gone.log"])] == [
        "WARNING x: to 892******67 failed"
    ]


def test_a_digit_text_inside_a_message_id_is_not_a_leak() -> None:
    texts = ["80591620", "code 4821"]
    assert leaks_in("message 1180591620717411303 ok", texts) is None
    assert leaks_in("text 80591620 sent", texts) is not None
    assert leaks_in("sent: code 4821", texts) is not None
