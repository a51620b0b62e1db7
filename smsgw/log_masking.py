"""The last line of defence for personal data in logs, on the entry point's handler.

Call sites mask what they log (``gateway.core.masking``), and the test session proves
they do (``tests/logscan.py``, which sees records before this filter). What no call site
controls still passes here: a database error quoting a row (``Key (number)=(+7…)``), a
library's traceback. Numbers found in the final line are masked; texts cannot be
recognised, so call sites must never log them.
"""

from __future__ import annotations

import logging

from gateway.core.masking import scrub

_FORMATTER = logging.Formatter()


class ScrubNumbers(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(_FORMATTER.formatException(record.exc_info))
        return True


def install(root: logging.Logger) -> None:
    for handler in root.handlers:
        handler.addFilter(ScrubNumbers())
