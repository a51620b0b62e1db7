"""The provider's logger, masking, and the bridge that takes aiosmpplib's log lines into it."""

from __future__ import annotations

import logging

LOG = logging.getLogger("gateway.smpp")


def _mask(number: str) -> str:
    """``+79211234567`` → ``+7921*****67``: the country and operator code, the last two digits."""
    keep_head = 5 if number.startswith("+") else 4
    if len(number) <= keep_head + 2:
        return "*" * len(number)
    return number[:keep_head] + "*" * (len(number) - keep_head - 2) + number[-2:]


class LibraryLogBridge(logging.Handler):
    """Re-logs aiosmpplib's records on ``gateway.smpp``, without their JSON metadata.

    aiosmpplib attaches this handler to its own ``StructuredLogger`` (it always attaches
    one). Its records append ``>>> {json}`` that may hold a whole message, recipient and
    text included, and its tracebacks may quote them: both are dropped, and only the event
    and the exception's class are kept.
    """

    def __init__(self, bind_name: str) -> None:
        super().__init__()
        self._bind_name = bind_name

    def emit(self, record: logging.LogRecord) -> None:
        event = record.getMessage().split(" >>> ", 1)[0]
        error = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
        suffix = f" ({error})" if error else ""
        LOG.log(record.levelno, "%s: aiosmpplib: %s%s", self._bind_name, event, suffix)
