"""The entry point's filter masks numbers that slip past the call sites."""

from __future__ import annotations

import io
import logging

from smsgw.log_masking import ScrubNumbers


def test_a_quoted_number_and_a_traceback_leave_masked() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ScrubNumbers())
    logger = logging.getLogger("tests.log_masking")
    logger.propagate = False  # the planted numbers must not reach the session's scan
    logger.addHandler(handler)
    try:
        logger.warning("batch failed: %s", "DETAIL: Key (number)=(+79211234567) already exists")
        try:
            raise ValueError("not a valid phone number: 8 921 123-45-67")
        except ValueError:
            logger.exception("message %d failed", 1180591620717411303)
    finally:
        logger.removeHandler(handler)
    written = out.getvalue()
    assert "+79*******67" in written and "1180591620717411303" in written
    assert "+79211234567" not in written and "123-45-67" not in written
