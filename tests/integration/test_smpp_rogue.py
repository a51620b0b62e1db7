"""A rogue SMSC over real TCP: a bad PDU ends only its session, and nothing else.

The SMSC (``tests.rogue_smsc``) binds two transceivers correctly, then answers one submit_sm
with garbage. That session is answered with generic_nack, closed by us and counted; its
bind reconnects; the submit in flight on it fails as a temporary error (the gateway sends
it again), the other bind never notices, and every other part gets its id and receipt.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Callable

import pytest

from providers.base import (
    ProviderTemporaryError,
    Receipt,
    ReceiptStatus,
    Submission,
    SubmitResult,
)
from providers.smpp import SmppProvider, SmppSettings
from providers.smpp.pdu import ESME_RINVCMDID, ESME_RINVCMDLEN
from tests.rogue_smsc import Fault, RogueSmsc

_RESP = 0x80000004  # submit_sm_resp


def _header(length: int, command_id: int = _RESP) -> Fault:
    return lambda sequence: struct.pack(">IIII", length, command_id, 0, sequence)


def _accepted(body: bytes) -> Fault:
    return lambda sequence: struct.pack(">IIII", 16 + len(body), _RESP, 0, sequence) + body


FAULTS: dict[str, tuple[Fault, int]] = {
    "command_length under the header": (_header(8), ESME_RINVCMDLEN),
    "command_length over the maximum": (_header(0x7FFFFFFF), ESME_RINVCMDLEN),
    "unknown command_id": (_header(16, 0x00000999), ESME_RINVCMDID),
    "message_id unterminated": (_accepted(b"abc"), ESME_RINVCMDLEN),
    "message_id over 64 octets": (_accepted(b"7" * 80 + b"\0"), ESME_RINVCMDLEN),
    "message_id not ASCII": (_accepted("идентификатор".encode() + b"\0"), ESME_RINVCMDLEN),
    "message_id empty": (_accepted(b"\0"), ESME_RINVCMDLEN),
}


async def eventually(predicate: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def rogue() -> AsyncIterator[RogueSmsc]:
    smsc = RogueSmsc()
    await smsc.start()
    yield smsc
    await smsc.stop()


async def _provider(rogue: RogueSmsc, receipts: list[Receipt]) -> SmppProvider:
    settings = SmppSettings(
        name="rogue", host="127.0.0.1", port=rogue.port, system_id="smsgw", password="secret",
        binds=2, close_timeout=2.0, reconnect_min=0.05, reconnect_max=0.2,
    )  # fmt: skip
    provider = SmppProvider(settings, receipts.append)
    await provider.start()
    return provider


def _submission(n: int) -> Submission:
    return Submission(n, "+79211234567", "Acme", f"message {n}")


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
async def test_a_bad_pdu_ends_only_its_session(rogue: RogueSmsc, fault: str) -> None:
    garbage, nack_status = FAULTS[fault]
    rogue.faults[3] = garbage
    receipts: list[Receipt] = []
    provider = await _provider(rogue, receipts)
    try:
        outcomes = [await _try(provider, _submission(n)) for n in range(1, 7)]
        await eventually(lambda: provider.snapshot().binds_up == 2 and rogue.bound == 3)
        outcomes += [await _try(provider, _submission(n)) for n in range(7, 11)]
    finally:
        await provider.close()

    failed = [n for n, outcome in enumerate(outcomes, 1) if isinstance(outcome, Exception)]
    assert failed == [3] and isinstance(outcomes[2], ProviderTemporaryError)
    ids = [outcome.part_ids[0] for outcome in outcomes if isinstance(outcome, SubmitResult)]
    assert all(i.startswith("r") and len(i) < 10 for i in ids)  # never the garbage id
    await eventually(lambda: len(receipts) == 9)
    assert {r.provider_message_id for r in receipts} == set(ids)
    assert {r.status for r in receipts} == {ReceiptStatus.DELIVERED}
    assert provider.snapshot().malformed_pdus == 1
    assert rogue.nacks == [nack_status]  # answered as §2.3 asks, then closed
    assert (rogue.opened, rogue.hung_up - 2) == (3, 1)  # 2 binds + 1 reconnect; 2 at close


async def _try(provider: SmppProvider, submission: Submission) -> SubmitResult | Exception:
    try:
        return await provider.submit(submission)
    except ProviderTemporaryError as exc:
        return exc


async def test_a_truncated_pdu_holds_its_session_only_until_the_link_check(
    rogue: RogueSmsc,
) -> None:
    """A PDU announced longer than sent leaves the reader waiting for the rest: the
    enquire_link that then goes unanswered ends the session, and the bind comes back."""
    rogue.faults[1] = lambda sequence: _header(100)(sequence) + b"\0" * 10
    settings = SmppSettings(
        name="rogue", host="127.0.0.1", port=rogue.port, system_id="smsgw", password="secret",
        enquire_link_interval=0.3, response_timeout=0.5, reconnect_min=0.05, reconnect_max=0.2,
        close_timeout=1.0,
    )  # fmt: skip
    provider = SmppProvider(settings, lambda receipt: None)
    await provider.start()
    try:
        first = await _try(provider, _submission(1))
        await eventually(lambda: rogue.bound == 2 and provider.snapshot().binds_up == 1)
        second = await _try(provider, _submission(2))
    finally:
        await provider.close()
    assert isinstance(first, ProviderTemporaryError)  # timed out or link lost: sent again
    assert isinstance(second, SubmitResult)


@pytest.mark.parametrize("octets", [1, 7, 45])
async def test_pdus_cut_anywhere_by_the_network_are_read_whole(
    rogue: RogueSmsc, octets: int
) -> None:
    """The receive loop frames PDUs out of whatever the reads return: a PDU in pieces,
    several in one read, a read that ends inside a header."""
    rogue.dribble = octets
    receipts: list[Receipt] = []
    provider = await _provider(rogue, receipts)
    try:
        outcomes = await asyncio.gather(*(provider.submit(_submission(n)) for n in range(1, 9)))
        await eventually(lambda: len(receipts) == 8 and rogue.receipts_acked == 8)
    finally:
        await provider.close()
    ids = {outcome.part_ids[0] for outcome in outcomes}
    assert len(ids) == 8 and {r.provider_message_id for r in receipts} == ids
    assert provider.snapshot().malformed_pdus == 0
