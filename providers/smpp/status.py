"""What an SMPP command_status means for the message: retry later, or give up.

Error codes: an SMSC's answer is reported as its command_status in 8-digit lowercase hex
(``"0x0000000b"``), so that vendor codes (0x400–0x4ff) need no name to be kept; the SMPP
name, when there is one, goes into ``detail``. Failures that never reached the SMSC carry
the short ``smpp_*`` codes below.

Only the statuses in ``TEMPORARY`` are retried; anything else, vendor codes included, is
permanent, so that an unknown refusal is never retried forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from aiosmpplib import SmppCommandStatus

from providers.base import ProviderPermanentError, ProviderTemporaryError

ESME_ROK = 0x00000000
ESME_RTHROTTLED = 0x00000058
ESME_RMSGQFUL = 0x00000014

TEMPORARY: Mapping[int, float] = MappingProxyType(
    {
        0x00000004: 1.0,  # ESME_RINVBNDSTS: the SMSC thinks we are unbound; we rebind
        0x00000008: 5.0,  # ESME_RSYSERR
        0x00000014: 5.0,  # ESME_RMSGQFUL: our queue at the SMSC (or the handset's) is full
        0x00000045: 10.0,  # ESME_RSUBMITFAIL: a generic failure many SMSCs use when busy
        0x00000058: 1.0,  # ESME_RTHROTTLED: over the contracted rate
        0x00000064: 10.0,  # ESME_RX_T_APPN: "ESME receiver temporary app error"
        0x000000FF: 10.0,  # ESME_RUNKNOWNERR
    }
)
"""Statuses worth retrying, with the delay (seconds) to wait before trying again."""

TIMEOUT = "smpp_timeout"  # no submit_sm_resp within response_timeout
LINK_LOST = "smpp_link_lost"  # the bind dropped with the submit_sm in flight or queued
NOT_BOUND = "smpp_not_bound"
CLOSING = "smpp_closing"
SEND_FAILED = "smpp_send_failed"
TOO_MANY_PARTS = "smpp_too_many_parts"
BAD_ADDRESS = "smpp_bad_address"


def status_code(status: int) -> str:
    return f"0x{status:08x}"


def status_name(status: int) -> str:
    try:
        return str(SmppCommandStatus(status).name)
    except ValueError:
        return "vendor-specific" if 0x400 <= status <= 0x4FF else "unknown"


def status_error(status: int) -> ProviderTemporaryError | ProviderPermanentError:
    """The error a non-zero submit_sm_resp (or generic_nack) status stands for."""
    code, name = status_code(status), status_name(status)
    retry_after = TEMPORARY.get(status)
    if retry_after is None:
        return ProviderPermanentError(code, name)
    return ProviderTemporaryError(code, name, retry_after=retry_after)


def temporary(code: str, detail: str = "", retry_after: float = 1.0) -> ProviderTemporaryError:
    return ProviderTemporaryError(code, detail, retry_after=retry_after)
