"""The SMPP provider against the SMSC simulator, in-process, over real TCP."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from gateway.embedded import free_port
from loadtest import smpp_pdu
from loadtest.smsc import SmscConfig, SmscSimulator
from providers.base import (
    ProviderPermanentError,
    ProviderTemporaryError,
    Receipt,
    ReceiptStatus,
    Submission,
)
from providers.masking import mask_phone
from providers.smpp import InboundPart, SmppProvider, SmppSettings
from providers.smpp.pdu import parse_deliver_sm
from providers.smpp.settings import source_address
from providers.smpp.status import status_error

CYRILLIC = "Съешь же ещё этих мягких французских булок, да выпей чаю. " * 3  # 177 chars: 3 parts
DEADLINE = 10.0

Factory = Callable[..., Awaitable[SmppProvider]]


async def eventually(predicate: Callable[[], bool], within: float = DEADLINE) -> None:
    """Poll ``predicate`` until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def submission(message_id: int = 1, text: str = "hello", **changes: Any) -> Submission:
    return dataclasses.replace(Submission(message_id, "+79211234567", "Acme", text), **changes)


@pytest.fixture
async def sim() -> AsyncIterator[SmscSimulator]:
    simulator = SmscSimulator(SmscConfig(port=0, receipt_delay=0.01))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
def receipts() -> list[Receipt]:
    return []


@pytest.fixture
async def make(sim: SmscSimulator, receipts: list[Receipt]) -> AsyncIterator[Factory]:
    """Start providers bound to ``sim``; close them all at the end."""
    started: list[SmppProvider] = []

    async def start(**changes: Any) -> SmppProvider:
        defaults: dict[str, Any] = {"close_timeout": 2.0, "reconnect_min": 0.05}
        settings = SmppSettings(
            name="sim",
            host="127.0.0.1",
            port=sim.port,
            system_id="smsgw",
            password="secret",
            **(defaults | changes),
        )
        provider = SmppProvider(settings, receipts.append)
        await provider.start()
        started.append(provider)
        return provider

    yield start
    for provider in started:
        await provider.close()


async def test_submit_returns_the_part_id_and_its_receipt_reaches_the_sink(
    make: Factory, receipts: list[Receipt]
) -> None:
    provider = await make()
    assert provider.ready and provider.capacity() == 100

    result = await provider.submit(submission(7))

    assert result.message_id == 7 and len(result.part_ids) == 1
    await eventually(lambda: len(receipts) == 1)
    assert receipts[0].provider == "sim"
    assert receipts[0].provider_message_id == result.part_ids[0]
    assert receipts[0].status is ReceiptStatus.DELIVERED


async def test_three_part_ucs2_message_gets_three_ids_and_three_receipts(
    make: Factory, sim: SmscSimulator, receipts: list[Receipt]
) -> None:
    provider = await make()

    result = await provider.submit(submission(text=CYRILLIC))

    assert len(result.part_ids) == 3 and len(set(result.part_ids)) == 3
    await eventually(lambda: len(receipts) == 3)
    assert {r.provider_message_id for r in receipts} == set(result.part_ids)
    assert (sim.stats.parts, sim.stats.concat_messages) == (3, 1)


async def test_window_is_never_exceeded_under_2000_concurrent_submits(
    make: Factory, sim: SmscSimulator, receipts: list[Receipt]
) -> None:
    window = 50
    sim.update(max_window=window, resp_delay=0.02)
    provider = await make(window=window)

    results = await asyncio.gather(*(provider.submit(submission(i)) for i in range(2000)))

    assert len({r.part_ids[0] for r in results}) == 2000
    assert sim.stats.window_violations == 0
    assert window // 2 < sim.stats.max_outstanding <= window
    await eventually(lambda: len(receipts) == 2000)
    assert provider.capacity() == window


@pytest.mark.parametrize(
    ("fault", "code"), [("throttle_ratio", "0x00000058"), ("msgqful_ratio", "0x00000014")]
)
async def test_throttling_is_a_temporary_error(
    make: Factory, sim: SmscSimulator, fault: str, code: str
) -> None:
    provider = await make()
    sim.update(**{fault: 1.0})

    with pytest.raises(ProviderTemporaryError) as caught:
        await provider.submit(submission())

    assert caught.value.code == code and caught.value.retry_after > 0


async def test_rejection_is_a_permanent_error_with_the_status_code(
    make: Factory, sim: SmscSimulator
) -> None:
    provider = await make()
    sim.update(reject_ratio=1.0)

    with pytest.raises(ProviderPermanentError) as caught:
        await provider.submit(submission())

    assert caught.value.code == "0x0000000b" and caught.value.detail == "ESME_RINVDSTADR"
    assert provider.ready  # a refusal leaves the bind alone


async def test_dropped_connection_fails_outstanding_promptly_and_rebinds(
    make: Factory, sim: SmscSimulator
) -> None:
    provider = await make(response_timeout=30.0, window=300)
    sim.update(resp_delay=5.0)  # every submit stays outstanding until the drop
    pending = [asyncio.create_task(provider.submit(submission(i))) for i in range(300)]
    await eventually(lambda: sim.stats.submits == 300)

    started = time.monotonic()
    sim.drop_connections()
    outcomes = await asyncio.gather(*pending, return_exceptions=True)

    assert time.monotonic() - started < 2.0  # not after the 30 s response timeout
    assert all(isinstance(o, ProviderTemporaryError) for o in outcomes)
    assert {o.code for o in outcomes if isinstance(o, ProviderTemporaryError)} == {"smpp_link_lost"}
    sim.update(resp_delay=0.0)
    await eventually(lambda: provider.ready)
    assert provider.capacity() == 300
    assert len((await provider.submit(submission(1000))).part_ids) == 1
    assert sim.stats.binds == 2


async def test_submit_while_unbound_fails_at_once(make: Factory, sim: SmscSimulator) -> None:
    provider = await make(reconnect_min=5.0, reconnect_max=5.0)
    sim.drop_connections()
    await eventually(lambda: not provider.ready)

    assert provider.capacity() == 0
    with pytest.raises(ProviderTemporaryError) as caught:
        await provider.submit(submission())
    assert caught.value.code == "smpp_not_bound"


async def test_hanging_smsc_is_detected_by_enquire_link_timeout(
    make: Factory, sim: SmscSimulator
) -> None:
    provider = await make(enquire_link_interval=0.2, response_timeout=0.5)
    await eventually(lambda: sim.stats.enquire_links >= 1)  # the link is kept alive

    sim.set_hang(True)
    with pytest.raises(ProviderTemporaryError) as caught:
        await provider.submit(submission())
    assert caught.value.code in {"smpp_timeout", "smpp_link_lost"}
    await eventually(lambda: not provider.ready, within=3.0)

    sim.set_hang(False)
    await eventually(lambda: provider.ready)
    await provider.submit(submission(2))


async def test_transmitter_and_receiver_binds(
    make: Factory, sim: SmscSimulator, receipts: list[Receipt]
) -> None:
    provider = await make(bind_mode="transmitter+receiver")

    result = await provider.submit(submission(text=CYRILLIC))

    assert sim.stats.binds == 2
    await eventually(lambda: len(receipts) == 3)
    assert {r.provider_message_id for r in receipts} == set(result.part_ids)


async def test_receipt_before_the_submit_resp_still_reaches_the_sink(
    make: Factory, sim: SmscSimulator, receipts: list[Receipt]
) -> None:
    sim.update(early_receipt_ratio=1.0, resp_delay=0.05)
    provider = await make()

    results = await asyncio.gather(*(provider.submit(submission(i)) for i in range(20)))

    assert sim.stats.receipts_early == 20
    await eventually(lambda: len(receipts) == 20)
    assert {r.provider_message_id for r in receipts} == {r.part_ids[0] for r in results}


async def test_close_waits_for_outstanding_then_unbinds(make: Factory, sim: SmscSimulator) -> None:
    sim.update(resp_delay=0.2)
    provider = await make()
    pending = [asyncio.create_task(provider.submit(submission(i))) for i in range(10)]
    await eventually(lambda: sim.stats.submits == 10)

    await provider.close()

    assert all(len(r.part_ids) == 1 for r in await asyncio.gather(*pending))
    assert sim.stats.unbinds == 1
    await eventually(lambda: sim.stats.sessions_open == 0)
    assert not provider.ready and provider.capacity() == 0
    with pytest.raises(ProviderTemporaryError) as caught:
        await provider.submit(submission())
    assert caught.value.code == "smpp_closing"


async def test_bad_credentials_fail_start(sim: SmscSimulator) -> None:
    settings = SmppSettings("sim", "127.0.0.1", sim.port, "smsgw", "wrong", reconnect_min=0.05)
    provider = SmppProvider(settings, lambda receipt: None)

    with pytest.raises(ProviderPermanentError) as caught:
        await provider.start()

    assert caught.value.code == "0x0000000e"  # ESME_RINVPASWD
    assert not provider.ready
    await eventually(lambda: sim.stats.sessions_open == 0)


async def test_unreachable_smsc_fails_start_after_connect_timeout() -> None:
    settings = SmppSettings(
        "sim", "127.0.0.1", 1, "smsgw", "secret", connect_timeout=0.3, reconnect_min=0.05
    )
    with pytest.raises(ProviderTemporaryError) as caught:
        await SmppProvider(settings, lambda receipt: None).start()
    assert caught.value.code == "smpp_not_bound"


async def test_a_failing_receipt_sink_does_not_break_the_bind(sim: SmscSimulator) -> None:
    seen: list[Receipt] = []

    def sink(receipt: Receipt) -> None:
        seen.append(receipt)
        if len(seen) == 1:
            raise RuntimeError("sink bug")

    settings = SmppSettings("sim", "127.0.0.1", sim.port, "smsgw", "secret", close_timeout=2.0)
    provider = SmppProvider(settings, sink)
    await provider.start()
    try:
        for message_id in range(3):
            await provider.submit(submission(message_id))
        await eventually(lambda: len(seen) == 3)
        assert provider.ready and sim.stats.binds == 1
    finally:
        await provider.close()


# Pieces checked without a connection.


def test_the_esme_runs_on_our_correlator_broker_and_window() -> None:
    # ESME falls back to its own O(n) correlator when handed a falsy one: keep ours truthy.
    settings = SmppSettings("sim", "127.0.0.1", 1, "smsgw", "secret")
    provider = SmppProvider(settings, lambda receipt: None)
    (bind,) = provider._binds
    (client,) = bind._clients
    assert client.correlator is client.requests
    assert client.broker is client.rate_limiter is bind.outbox


def test_deliver_sm_goes_to_the_receipt_sink_or_the_inbound_callback() -> None:
    receipts: list[Receipt] = []
    inbound: list[InboundPart] = []
    settings = SmppSettings("sim", "127.0.0.1", 1, "smsgw", "secret")
    provider = SmppProvider(settings, receipts.append, inbound.append)
    mo = smpp_pdu.ShortMessage("79211234567", "1234", b"hi")
    receipt = smpp_pdu.ShortMessage(
        "79211234567", "Acme", b"id:1F stat:DELIVRD err:000", esm_class=smpp_pdu.ESM_CLASS_RECEIPT
    )

    provider.deliver(smpp_pdu.deliver_sm(1, mo))
    provider.deliver(smpp_pdu.deliver_sm(2, receipt))
    provider.deliver(smpp_pdu.deliver_sm(3, mo)[:30])

    assert [dataclasses.replace(part, received_at=None) for part in inbound] == [
        InboundPart("sim", "79211234567", "1234", 0, 0, b"hi")
    ]
    assert inbound[0].received_at is not None
    assert [(r.provider_message_id, r.status) for r in receipts] == [
        ("1F", ReceiptStatus.DELIVERED)
    ]
    assert provider.malformed_deliver_sm == 1


def test_mobile_originated_deliver_sm_parses_into_an_inbound_part() -> None:
    sm = smpp_pdu.ShortMessage(
        "79211234567", "1234", "привет".encode("utf-16-be"), data_coding=8,
        tlvs={0x0204: b"\x00\x01"},
    )  # fmt: skip
    parsed = parse_deliver_sm(smpp_pdu.deliver_sm(9, sm))

    assert (parsed.source, parsed.destination, parsed.data_coding, parsed.esm_class) == (
        "79211234567", "1234", 8, 0,
    )  # fmt: skip
    assert parsed.short_message == "привет".encode("utf-16-be")
    assert parsed.tlvs == {0x0204: b"\x00\x01"} and parsed.sar is None
    with pytest.raises(ValueError):
        parse_deliver_sm(smpp_pdu.deliver_sm(9, sm)[:40])


@pytest.mark.parametrize(
    ("sender", "ton_npi"),
    [("Acme", (5, 0)), ("+79211234567", (1, 1)), ("1234", (3, 0)), ("79211234567", (1, 1))],
)
def test_sender_address_rules(sender: str, ton_npi: tuple[int, int]) -> None:
    address = source_address(sender)
    assert (address.ton, address.npi) == ton_npi and "+" not in address.value


def test_vendor_status_is_permanent_and_masking_keeps_only_the_ends() -> None:
    error = status_error(0x401)
    assert isinstance(error, ProviderPermanentError) and error.code == "0x00000401"
    assert mask_phone("+79211234567") == "+79*******67"


async def test_a_later_part_refused_for_now_is_retried_not_the_whole_message(
    make: Factory, sim: SmscSimulator
) -> None:
    """Resending a whole multi-part message would deliver its first parts twice."""
    provider = await make()
    sim.update(throttle_ratio=0.3, seed=7)
    text = "Длинное сообщение для проверки частей. " * 4  # 3 UCS-2 parts
    done = 0
    for n in range(8):
        try:
            result = await provider.submit(submission(n, text))
        except ProviderTemporaryError:
            continue  # refused at the first part: nothing went
        assert len(result.part_ids) == 3
        done += 1
    assert done > 0 and sim.stats.resp_ok == 3 * done  # no part accepted twice or in vain



def _late_provider(port: int, connect_timeout: float) -> SmppProvider:
    settings = SmppSettings(
        "sim", "127.0.0.1", port, "smsgw", "secret", connect_timeout=connect_timeout,
        reconnect_min=0.05, reconnect_max=0.1,
    )
    return SmppProvider(settings, lambda receipt: None)


async def _binds_again_after_a_drop(provider: SmppProvider, port: int) -> None:
    """Start ``provider`` against an SMSC that comes up now; after a dropped connection it
    rebinds with one session (no second ESME) and sends."""
    async with SmscSimulator(SmscConfig(port=port, receipt_delay=0.01)) as late:
        await provider.start()
        try:
            await eventually(lambda: provider.ready)
            late.drop_connections()
            await eventually(lambda: late.stats.binds == 2)
            await eventually(lambda: provider.ready)
            assert len((await provider.submit(submission(7))).part_ids) == 1
            assert late.stats.binds == 2
        finally:
            await provider.close()


async def test_a_provider_that_came_up_late_still_rebinds_after_a_drop() -> None:
    """The gateway retries ``start()`` on the same provider while its SMSC is down; the
    clients closed by a failed start must reconnect like new ones once bound."""
    port = free_port()
    provider = _late_provider(port, 0.3)
    with pytest.raises(ProviderTemporaryError):
        await provider.start()  # nobody listens yet
    await _binds_again_after_a_drop(provider, port)


async def test_a_start_cancelled_by_its_callers_deadline_leaves_nothing_running() -> None:
    """The gateway waits a few seconds for a first bind, then retries in the background:
    the cancelled start must not leave an ESME behind to read the retried one's socket."""
    port = free_port()
    provider = _late_provider(port, 5.0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(provider.start(), 0.3)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("smpp sim")]
    await _binds_again_after_a_drop(provider, port)
