"""The TLV fast path of receipt parsing agrees with the full parse."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from providers import receipts
from providers.base import ReceiptStatus

STATES = {2: ReceiptStatus.DELIVERED, 5: ReceiptStatus.UNDELIVERABLE, 8: ReceiptStatus.REJECTED}


@given(st.integers(0, 2**40), st.sampled_from(sorted(STATES)), st.integers(0, 999))
def test_fast_path_matches_the_full_parse(n: int, state: int, err: int) -> None:
    mid = format(n, "X")
    text = (
        f"id:{n} sub:001 dlvrd:001 submit date:2611231159 done date:2611231200 "
        f"stat:DELIVRD err:{err:03d} text:hello"
    ).encode()
    tlvs = {
        receipts.TLV_RECEIPTED_MESSAGE_ID: mid.encode() + b"\0",
        receipts.TLV_MESSAGE_STATE: bytes([state]),
    }
    if err:
        tlvs[receipts.TLV_NETWORK_ERROR_CODE] = bytes([3]) + err.to_bytes(2, "big")
    fast = receipts.receipt_from_deliver_sm("p", 0x04, text, tlvs)
    assert fast is not None
    assert fast.provider_message_id == mid and fast.status is STATES[state]
    assert fast.done_at == receipts.parse_done_date("2611231200")
    assert (fast.error_code is None) == (err == 0)
