"""The provider's logger, masking, and the bridge that takes aiosmpplib's log lines into it."""

from __future__ import annotations

import logging

LOG = logging.getLogger("gateway.smpp")


# ESME logs the ordinary life of a link at ERROR; the provider logs each bind lost itself.
LIBRARY_LEVELS = {
    "Connection lost while connecting to SMSC": logging.WARNING,  # any ConnectionError
    "Timed out while waiting for ENQUIRE_LINK response": logging.WARNING,
    "Timed out while connecting to SMSC": logging.WARNING,
    "Error while reading from SMSC": logging.WARNING,
    "Error while shutting down SMSC connection": logging.INFO,  # the link was gone already
}


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
        level = LIBRARY_LEVELS.get(event, record.levelno)
        LOG.log(level, "%s: aiosmpplib: %s%s", self._bind_name, event, suffix)
