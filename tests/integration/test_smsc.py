"""The SMSC simulator over real TCP, driven by a raw client built on the codec."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from loadtest import smpp_pdu as p
from loadtest.bench_smsc import BenchConfig, run_bench
from loadtest.smpp_pdu import CommandId, MessageState, Pdu, ShortMessage, Status, Tag
from loadtest.smsc import SmscConfig, SmscSimulator, _Receipt, _ReceiptQueue

FIRST_ID = SmscConfig().first_id
READ_TIMEOUT = 5.0
RECEIPT_RE = re.compile(
    rb"id:(?P<id>\w+) sub:001 dlvrd:(?P<dlvrd>\d{3}) submit date:\d{10} done date:\d{10}"
    rb" stat:(?P<stat>[A-Z]+) err:(?P<err>\d{3}) text:(?P<text>.*)"
)


class Esme:
    """A bare SMPP client: write PDUs, read PDUs one at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.seq = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    async def send(self, *pdus: bytes) -> None:
        self.writer.write(b"".join(pdus))
        await self.writer.drain()

    async def read(self) -> Pdu:
        async with asyncio.timeout(READ_TIMEOUT):
            header = await self.reader.readexactly(p.HEADER_LENGTH)
            length = struct.unpack(">I", header[:4])[0]
            return p.decode_pdu(header + await self.reader.readexactly(length - p.HEADER_LENGTH))

    async def expect_any(self, command: int) -> Pdu:
        pdu = await self.read()
        assert CommandId(pdu.command_id) == command, pdu
        return pdu

    async def expect(self, command: int, status: int = 0) -> Pdu:
        pdu = await self.read()
        assert (CommandId(pdu.command_id), pdu.status) == (command, status), pdu
        return pdu

    async def bind(
        self,
        command: int = CommandId.BIND_TRANSCEIVER,
        system_id: str = "smsgw",
        password: str = "secret",
        status: int = 0,
    ) -> Pdu:
        await self.send(p.encode_bind(command, self.next_seq(), p.Bind(system_id, password)))
        return await self.expect(command | p.RESP_BIT, status)

    async def submit(self, sm: ShortMessage | None = None, **changes: Any) -> int:
        sm = sm or ShortMessage("12345", "447700900001", b"hello", registered_delivery=1)
        seq = self.next_seq()
        await self.send(p.submit_sm(seq, sm._replace(**changes)))
        return seq

    async def submit_ok(self, **changes: Any) -> str:
        seq = await self.submit(**changes)
        resp = await self.expect(CommandId.SUBMIT_SM_RESP)
        assert resp.sequence == seq
        return p.decode_message_id(resp.body)

    async def receipt(self) -> tuple[ShortMessage, re.Match[bytes]]:
        pdu = await self.expect(CommandId.DELIVER_SM)
        await self.send(p.deliver_sm_resp(pdu.sequence))
        sm = p.decode_sm(pdu.body)
        match = RECEIPT_RE.fullmatch(sm.short_message)
        assert match is not None, sm.short_message
        return sm, match

    async def at_eof(self) -> bool:
        async with asyncio.timeout(READ_TIMEOUT):
            return await self.reader.read(1) == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


Connect = Callable[[], Awaitable[Esme]]


@pytest.fixture
async def smsc() -> AsyncIterator[SmscSimulator]:
    async with SmscSimulator(SmscConfig(port=0, receipt_delay=0.01)) as sim:
        yield sim


@pytest.fixture
async def connect(smsc: SmscSimulator) -> AsyncIterator[Connect]:
    opened: list[Esme] = []

    async def open_one() -> Esme:
        esme = Esme(*await asyncio.open_connection("127.0.0.1", smsc.port))
        opened.append(esme)
        return esme

    yield open_one
    for esme in opened:
        await esme.close()


@pytest.fixture
async def esme(connect: Connect) -> Esme:
    client = await connect()
    await client.bind()
    return client


async def until(predicate: Callable[[], bool]) -> None:
    """Poll the simulator's counters (they have no event to wait on), with a deadline."""
    async with asyncio.timeout(READ_TIMEOUT):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.002)


def hex_id(offset: int = 0) -> str:
    return f"{FIRST_ID + offset:X}"


# -- sessions --------------------------------------------------------------------------------


async def test_bind_enquire_link_unbind(smsc: SmscSimulator, connect: Connect) -> None:
    client = await connect()
    resp = await client.bind()
    assert p.decode_bind_resp(resp.body) == "SMSCSIM"
    await client.send(p.enquire_link(77))
    assert (await client.expect(CommandId.ENQUIRE_LINK_RESP)).sequence == 77
    await client.send(p.unbind(78))
    assert (await client.expect(CommandId.UNBIND_RESP)).sequence == 78
    assert await client.at_eof()
    await until(lambda: smsc.stats.sessions_open == 0)
    stats = smsc.stats.snapshot()
    assert (stats["binds"], stats["enquire_links"], stats["unbinds"]) == (1, 1, 1)


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [("nobody", "secret", Status.ESME_RINVSYSID), ("smsgw", "wrong", Status.ESME_RINVPASWD)],
)
async def test_bad_credentials_answer_then_close(
    smsc: SmscSimulator, connect: Connect, system_id: str, password: str, status: Status
) -> None:
    client = await connect()
    await client.bind(CommandId.BIND_TRANSMITTER, system_id, password, status=status)
    assert await client.at_eof()
    assert (smsc.stats.binds, smsc.stats.bind_failures) == (0, 1)


async def test_any_credentials(smsc: SmscSimulator, connect: Connect) -> None:
    smsc.update(system_id=None)
    client = await connect()
    await client.bind(CommandId.BIND_RECEIVER, "whoever", "whatever")
    assert smsc.stats.binds == 1


async def test_second_bind_is_refused(esme: Esme) -> None:
    await esme.bind(status=Status.ESME_RALYBND)
    await esme.submit_ok()


async def test_enquire_link_works_before_bind(connect: Connect) -> None:
    client = await connect()
    await client.send(p.enquire_link(3))
    await client.expect(CommandId.ENQUIRE_LINK_RESP)


@pytest.mark.parametrize("bind_as", [None, CommandId.BIND_RECEIVER])
async def test_submit_needs_a_transmitter_bind(
    smsc: SmscSimulator, connect: Connect, bind_as: CommandId | None
) -> None:
    client = await connect()
    if bind_as is not None:
        await client.bind(bind_as)
    await client.submit()
    resp = await client.expect(CommandId.SUBMIT_SM_RESP, Status.ESME_RINVBNDSTS)
    assert p.decode_message_id(resp.body) == ""
    assert smsc.stats.submits == 0


async def test_unknown_command_gets_generic_nack(smsc: SmscSimulator, esme: Esme) -> None:
    await esme.send(p.frame(CommandId.QUERY_SM, 41, b"1\0\0\0\0"))
    nack = await esme.expect(CommandId.GENERIC_NACK, Status.ESME_RINVCMDID)
    assert nack.sequence == 41
    await esme.submit_ok()
    assert smsc.stats.generic_nacks == 1


@pytest.mark.parametrize(
    "garbage",
    [
        struct.pack(">IIII", 8, CommandId.SUBMIT_SM, 0, 99),
        struct.pack(">IIII", p.MAX_PDU_LENGTH + 1, CommandId.SUBMIT_SM, 0, 99),
        p.frame(CommandId.SUBMIT_SM, 99, b"no terminator anywhere"),
    ],
    ids=["too-short", "too-long", "bad-body"],
)
async def test_malformed_pdu_closes_only_that_session(
    smsc: SmscSimulator, connect: Connect, esme: Esme, garbage: bytes
) -> None:
    other = await connect()
    await other.bind()
    await esme.send(garbage)
    nack = await esme.expect(CommandId.GENERIC_NACK, Status.ESME_RINVCMDLEN)
    assert nack.sequence == 99
    assert await esme.at_eof()
    assert smsc.stats.bad_pdus == 1
    await other.submit_ok()


async def test_responses_before_a_malformed_pdu_are_still_sent(esme: Esme) -> None:
    await esme.send(p.enquire_link(5), struct.pack(">IIII", 3, 0, 0, 6))
    assert (await esme.expect(CommandId.ENQUIRE_LINK_RESP)).sequence == 5
    assert (await esme.expect(CommandId.GENERIC_NACK, Status.ESME_RINVCMDLEN)).sequence == 6


async def test_pdu_split_across_writes(esme: Esme) -> None:
    whole = p.submit_sm(500, ShortMessage("1", "2", b"split"))
    for i in range(0, len(whole), 7):
        await esme.send(whole[i : i + 7])
    assert (await esme.expect(CommandId.SUBMIT_SM_RESP)).sequence == 500


async def test_drop_connections(smsc: SmscSimulator, connect: Connect, esme: Esme) -> None:
    other = await connect()
    await until(lambda: smsc.stats.sessions_open == 2)
    smsc.drop_connections()
    assert await esme.at_eof()
    assert await other.at_eof()
    await until(lambda: smsc.stats.sessions_open == 0)


async def test_stop_closes_sessions_and_port() -> None:
    sim = SmscSimulator(SmscConfig(port=0))
    await sim.start()
    port = sim.port
    client = Esme(*await asyncio.open_connection("127.0.0.1", port))
    await client.bind()
    await sim.stop()
    assert await client.at_eof()
    await client.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


# -- submits and receipts --------------------------------------------------------------------


async def test_submit_and_delivered_receipt(smsc: SmscSimulator, esme: Esme) -> None:
    sent = ShortMessage(
        "Sender", "447700900123", b"Hello \xe9 world, this is long",
        source_addr_ton=5, source_addr_npi=0, dest_addr_ton=1, dest_addr_npi=1,
        registered_delivery=1,
    )  # fmt: skip
    message_id = await esme.submit_ok(sm=sent)
    assert message_id == hex_id()
    receipt, text = await esme.receipt()
    assert (receipt.esm_class, receipt.data_coding) == (0x04, 0)
    assert (receipt.source_addr, receipt.source_addr_ton, receipt.source_addr_npi) == (
        "447700900123", 1, 1,
    )  # fmt: skip
    assert (receipt.destination_addr, receipt.dest_addr_ton, receipt.dest_addr_npi) == (
        "Sender", 5, 0,
    )  # fmt: skip
    assert text["id"].decode() == message_id
    assert (text["stat"], text["dlvrd"], text["err"]) == (b"DELIVRD", b"001", b"000")
    assert text["text"] == b"Hello ? world, this "
    assert receipt.tlvs == {
        Tag.RECEIPTED_MESSAGE_ID: message_id.encode() + b"\0",
        Tag.MESSAGE_STATE: bytes([MessageState.DELIVERED]),
    }
    await until(lambda: smsc.stats.deliver_sm_resp == 1)
    assert (smsc.stats.submits, smsc.stats.resp_ok, smsc.stats.receipts_sent) == (1, 1, 1)


async def test_message_ids_count_up(esme: Esme) -> None:
    ids = [await esme.submit_ok(registered_delivery=0) for _ in range(3)]
    assert ids == [hex_id(0), hex_id(1), hex_id(2)]


@pytest.mark.parametrize(
    ("id_format", "receipt_id_format", "resp_id", "receipt_id"),
    [
        ("dec", "same", str(FIRST_ID), str(FIRST_ID)),
        ("hex", "dec", f"{FIRST_ID:X}", str(FIRST_ID)),
        ("dec", "hex", str(FIRST_ID), f"{FIRST_ID:X}"),
    ],
)
async def test_id_formats(
    smsc: SmscSimulator,
    esme: Esme,
    id_format: str,
    receipt_id_format: str,
    resp_id: str,
    receipt_id: str,
) -> None:
    smsc.update(id_format=id_format, receipt_id_format=receipt_id_format)
    assert await esme.submit_ok() == resp_id
    receipt, text = await esme.receipt()
    assert text["id"].decode() == receipt_id
    assert receipt.tlvs[Tag.RECEIPTED_MESSAGE_ID] == receipt_id.encode() + b"\0"


@pytest.mark.parametrize(
    ("outcome", "stat", "state"),
    [
        ("undeliverable", b"UNDELIV", MessageState.UNDELIVERABLE),
        ("expired", b"EXPIRED", MessageState.EXPIRED),
        ("rejected", b"REJECTD", MessageState.REJECTED),
    ],
)
async def test_failed_receipts(
    smsc: SmscSimulator, esme: Esme, outcome: str, stat: bytes, state: MessageState
) -> None:
    smsc.update(delivered=0.0, **{outcome: 1.0})
    await esme.submit_ok()
    receipt, text = await esme.receipt()
    assert (text["stat"], text["dlvrd"]) == (stat, b"000")
    assert text["err"] != b"000"
    assert receipt.tlvs[Tag.MESSAGE_STATE] == bytes([state])
    assert receipt.tlvs[Tag.NETWORK_ERROR_CODE] == b"\x03" + int(text["err"]).to_bytes(2, "big")


async def test_outcome_mix_follows_the_ratios_and_the_seed(smsc: SmscSimulator, esme: Esme) -> None:
    async def outcomes() -> list[bytes]:
        smsc.update(delivered=0.5, undeliverable=0.5, seed=7)
        for _ in range(60):
            await esme.submit()
        return [match["stat"] for match in (await _responses_and_receipts(esme, 60))[1]]

    first = await outcomes()
    assert 10 < first.count(b"DELIVRD") < 50
    assert first.count(b"DELIVRD") + first.count(b"UNDELIV") == 60
    assert await outcomes() == first


async def _responses_and_receipts(
    esme: Esme, count: int
) -> tuple[list[str], list[re.Match[bytes]]]:
    """Read ``count`` submit responses and receipts, in whatever order they interleave
    (a receipt may overtake a later response on a slow machine)."""
    ids: list[str] = []
    receipts: list[re.Match[bytes]] = []
    while len(ids) < count or len(receipts) < count:
        pdu = await esme.read()
        if pdu.command_id == CommandId.SUBMIT_SM_RESP:
            assert pdu.status == 0, pdu
            ids.append(p.decode_message_id(pdu.body))
            continue
        assert pdu.command_id == CommandId.DELIVER_SM, pdu
        await esme.send(p.deliver_sm_resp(pdu.sequence))
        match = RECEIPT_RE.fullmatch(p.decode_sm(pdu.body).short_message)
        assert match is not None
        receipts.append(match)
    return ids, receipts


async def test_registered_delivery_selects_receipts(smsc: SmscSimulator, esme: Esme) -> None:
    await esme.submit_ok(registered_delivery=0)
    await esme.submit_ok(registered_delivery=2)  # failure only: this one is delivered
    smsc.update(delivered=0.0, expired=1.0)
    failed = await esme.submit_ok(registered_delivery=2)
    _, text = await esme.receipt()
    assert text["id"].decode() == failed
    assert smsc.stats.receipts_sent == 1


@pytest.mark.parametrize(
    ("ratio", "status", "counter"),
    [
        ("throttle_ratio", Status.ESME_RTHROTTLED, "throttled"),
        ("msgqful_ratio", Status.ESME_RMSGQFUL, "msgqful"),
        ("reject_ratio", Status.ESME_RINVDSTADR, "rejected"),
    ],
)
async def test_submit_faults(
    smsc: SmscSimulator, esme: Esme, ratio: str, status: Status, counter: str
) -> None:
    smsc.update(**{ratio: 1.0})
    await esme.submit()
    resp = await esme.expect(CommandId.SUBMIT_SM_RESP, status)
    assert p.decode_message_id(resp.body) == ""
    smsc.update(**{ratio: 0.0})
    accepted = await esme.submit_ok()
    _, text = await esme.receipt()
    assert text["id"].decode() == accepted == hex_id(0)
    assert (smsc.stats.snapshot()[counter], smsc.stats.resp_ok) == (1, 1)


async def test_resp_delay_and_window_violations(smsc: SmscSimulator, esme: Esme) -> None:
    smsc.update(resp_delay=0.05, max_window=2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    sm = ShortMessage("1", "2", b"w")
    await esme.send(*(p.submit_sm(seq, sm) for seq in range(10, 15)))
    resps = [await esme.expect(CommandId.SUBMIT_SM_RESP) for _ in range(5)]
    assert loop.time() - started >= 0.05
    assert [r.sequence for r in resps] == [10, 11, 12, 13, 14]
    assert (smsc.stats.window_violations, smsc.stats.max_outstanding) == (3, 5)
    await esme.submit_ok(registered_delivery=0)
    assert smsc.stats.window_violations == 3


async def test_early_receipt_comes_before_the_resp(smsc: SmscSimulator, esme: Esme) -> None:
    smsc.update(early_receipt_ratio=1.0, resp_delay=0.02, receipt_delay=60.0)
    seq = await esme.submit()
    _, text = await esme.receipt()
    resp = await esme.expect(CommandId.SUBMIT_SM_RESP)
    assert resp.sequence == seq
    assert text["id"].decode() == p.decode_message_id(resp.body)
    assert smsc.stats.receipts_early == 1


async def test_duplicate_receipt(smsc: SmscSimulator, esme: Esme) -> None:
    smsc.update(duplicate_receipt_ratio=1.0)
    message_id = await esme.submit_ok()
    ids = [(await esme.receipt())[1]["id"].decode() for _ in range(2)]
    assert ids == [message_id, message_id]
    assert smsc.stats.receipts_duplicated == 1


async def test_lost_receipt(smsc: SmscSimulator, esme: Esme) -> None:
    smsc.update(lost_receipt_ratio=1.0)
    await esme.submit_ok()
    smsc.update(lost_receipt_ratio=0.0)
    kept = await esme.submit_ok()
    _, text = await esme.receipt()
    assert text["id"].decode() == kept
    assert (smsc.stats.receipts_lost, smsc.stats.receipts_sent) == (1, 1)


async def test_receipt_jitter_still_delivers_every_receipt(smsc: SmscSimulator, esme: Esme) -> None:
    smsc.update(receipt_jitter=0.03, seed=3)
    for _ in range(30):
        await esme.submit()
    ids, receipts = await _responses_and_receipts(esme, 30)
    assert {match["id"].decode() for match in receipts} == set(ids)


async def test_concatenated_parts_each_get_an_id_and_receipt(
    smsc: SmscSimulator, esme: Esme
) -> None:
    parts = [b"\x05\x00\x03\x2a\x02" + bytes([n]) + b"part" for n in (1, 2)]
    ids = [await esme.submit_ok(short_message=udh, esm_class=0x40) for udh in parts]
    receipts = {(await esme.receipt())[1]["id"].decode() for _ in parts}
    assert len(set(ids)) == 2
    assert receipts == set(ids)
    assert (smsc.stats.parts, smsc.stats.concat_messages, smsc.stats.submits) == (2, 1, 2)


# -- routing receipts to sessions ------------------------------------------------------------


async def test_receipts_wait_for_a_receiver(smsc: SmscSimulator, connect: Connect) -> None:
    sender = await connect()
    await sender.bind(CommandId.BIND_TRANSMITTER)
    message_id = await sender.submit_ok()
    await until(lambda: smsc.stats.receipts_pending == 1)
    receiver = await connect()
    await receiver.bind(CommandId.BIND_RECEIVER)
    _, text = await receiver.receipt()
    assert text["id"].decode() == message_id
    assert smsc.stats.receipts_pending == 0


async def test_pending_receipts_are_bounded(smsc: SmscSimulator, connect: Connect) -> None:
    smsc.update(max_pending_receipts=2)
    sender = await connect()
    await sender.bind(CommandId.BIND_TRANSMITTER)
    ids = [await sender.submit_ok() for _ in range(3)]
    await until(lambda: smsc.stats.receipt_drops == 1)
    receiver = await connect()
    await receiver.bind(CommandId.BIND_RECEIVER)
    got = [(await receiver.receipt())[1]["id"].decode() for _ in range(2)]
    assert got == ids[1:]


async def test_receipts_round_robin_over_receivers(connect: Connect) -> None:
    sender = await connect()
    await sender.bind(CommandId.BIND_TRANSMITTER)
    receivers = [await connect() for _ in range(2)]
    for receiver in receivers:
        await receiver.bind(CommandId.BIND_RECEIVER)
    ids = [await sender.submit_ok() for _ in range(4)]
    got = [[(await r.receipt())[1]["id"].decode() for _ in range(2)] for r in receivers]
    assert sorted(got[0] + got[1]) == sorted(ids)
    assert set(got[0]) != set(got[1])


async def test_receipts_stay_with_their_system_id(smsc: SmscSimulator, connect: Connect) -> None:
    smsc.update(system_id=None)
    alice, bob = await connect(), await connect()
    await alice.bind(system_id="alice")
    await bob.bind(system_id="bob")
    from_bob = await bob.submit_ok()
    from_alice = await alice.submit_ok()
    assert (await bob.receipt())[1]["id"].decode() == from_bob
    assert (await alice.receipt())[1]["id"].decode() == from_alice


async def test_hang_answers_nothing_then_recovers(smsc: SmscSimulator, esme: Esme) -> None:
    message_id = await esme.submit_ok()
    smsc.set_hang(True)
    await until(lambda: smsc.stats.receipts_pending == 1)
    await esme.send(p.enquire_link(1001))
    await until(lambda: smsc.stats.ignored_while_hung == 1)
    smsc.set_hang(False)
    await esme.send(p.enquire_link(1002))
    _, text = await esme.receipt()
    assert text["id"].decode() == message_id
    assert (await esme.expect(CommandId.ENQUIRE_LINK_RESP)).sequence == 1002
    assert smsc.stats.enquire_links == 1


async def test_hang_swallows_delayed_resps(smsc: SmscSimulator, esme: Esme) -> None:
    smsc.update(resp_delay=0.02)
    await esme.submit(registered_delivery=0)
    await until(lambda: smsc.stats.submits == 1)
    smsc.set_hang(True)
    await until(lambda: smsc.stats.ignored_while_hung == 1)
    smsc.set_hang(False)
    await esme.send(p.enquire_link(9))
    assert (await esme.expect(CommandId.ENQUIRE_LINK_RESP)).sequence == 9


# -- configuration, queue, CLI, bench ------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"port": 1},
        {"throttle_ratio": 1.5},
        {"throttle_ratio": 0.6, "reject_ratio": 0.6},
        {"delivered": 0.0},
        {"id_format": "octal"},
        {"resp_delay": -1.0},
        {"max_window": 0},
    ],
)
def test_update_rejects_bad_settings(changes: dict[str, object]) -> None:
    sim = SmscSimulator()
    with pytest.raises(ValueError):
        sim.update(**changes)
    assert sim.config == SmscConfig()


def test_receipt_queue_pops_what_is_due() -> None:
    queue = _ReceiptQueue()
    receipts = {name: _Receipt("s", name.encode()) for name in "abcd"}
    for due, name in [(3.0, "a"), (1.0, "b"), (2.0, "c"), (5.0, "d")]:
        queue.push(due, receipts[name])
    assert queue.next_due() == 1.0
    assert queue.pop_due(2.5) == [receipts["b"], receipts["c"]]
    assert queue.next_due() == 3.0
    assert queue.pop_due(10.0) == [receipts["a"], receipts["d"]]
    assert queue.next_due() is None
    assert len(queue) == 0


async def test_cli_announces_serves_and_stops_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtest.smsc", "--port", "0", "--any-credentials",
        "--id-format", "dec", "--stats-interval", "0.05",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(10):
            line = await proc.stdout.readline()
        match = re.fullmatch(rb"listening on 127\.0\.0\.1:(\d+)\n", line)
        assert match is not None, line
        client = Esme(*await asyncio.open_connection("127.0.0.1", int(match[1])))
        await client.bind(system_id="anyone", password="x")
        assert await client.submit_ok(registered_delivery=0) == str(FIRST_ID)
        await client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr
    assert stdout == b""
    assert b'"submits": 1' in stderr


async def test_bench_client_counts_everything(smsc: SmscSimulator) -> None:
    config = BenchConfig(port=smsc.port, binds=2, window=50, count=3001, timeout=30)
    result = await run_bench(config)
    assert result.complete
    assert (result.submitted, result.resp_ok, result.resp_error, result.receipts) == (
        3001, 3001, 0, 3001,
    )  # fmt: skip
    await until(lambda: smsc.stats.deliver_sm_resp == 3001)
    assert smsc.stats.max_outstanding <= 50


async def test_bench_client_counts_rejections(smsc: SmscSimulator) -> None:
    smsc.update(reject_ratio=0.5)
    result = await run_bench(BenchConfig(port=smsc.port, binds=1, window=20, count=400))
    assert result.complete
    assert result.resp_ok + result.resp_error == 400
    assert result.receipts == result.resp_ok == smsc.stats.resp_ok
    assert 100 < result.resp_error < 300


# -- mobile-originated messages --------------------------------------------------------------

CYRILLIC = "Здравствуйте! Ваш заказ №4521 готов к выдаче в пункте на ул. Ленина, 5. " * 2


async def mo_parts(esme: Esme, count: int) -> list[ShortMessage]:
    parts = []
    for _ in range(count):
        pdu = await esme.expect(CommandId.DELIVER_SM)
        await esme.send(p.deliver_sm_resp(pdu.sequence))
        parts.append(p.decode_sm(pdu.body))
    return parts


async def test_mo_cyrillic_in_udh_parts(smsc: SmscSimulator, esme: Esme) -> None:
    count = smsc.send_mo("smsgw", "+79211234567", "4521", CYRILLIC)
    parts = await mo_parts(esme, count)
    assert count == 3
    assert {(sm.esm_class, sm.data_coding) for sm in parts} == {(0x40, 0x08)}
    udhs = [sm.short_message[:6] for sm in parts]
    assert [(u[:3], u[4], u[5]) for u in udhs] == [(b"\x05\x00\x03", 3, n) for n in (1, 2, 3)]
    assert len({u[3] for u in udhs}) == 1
    text = b"".join(sm.short_message[6:] for sm in parts).decode("utf-16-be")
    assert text == CYRILLIC
    first = parts[0]
    assert (first.source_addr, first.source_addr_ton, first.source_addr_npi) == (
        "79211234567",
        1,
        1,
    )
    assert first.destination_addr == "4521"
    await until(lambda: smsc.stats.deliver_sm_resp == 3)
    assert (smsc.stats.mo_messages, smsc.stats.mo_parts_sent, smsc.stats.receipts_sent) == (1, 3, 0)


async def test_mo_sar_keeps_escapes_whole(smsc: SmscSimulator, esme: Esme) -> None:
    text = "Code {1234} €5 " * 12  # 180 characters, 228 septets: the escapes cost two
    count = smsc.send_mo("smsgw", "+79211234567", "Shop", text, concat="sar")
    parts = await mo_parts(esme, count)
    assert count == 2
    assert {(sm.esm_class, sm.data_coding) for sm in parts} == {(0, 0)}
    assert [sm.tlvs[Tag.SAR_SEGMENT_SEQNUM] for sm in parts] == [b"\x01", b"\x02"]
    assert {sm.tlvs[Tag.SAR_TOTAL_SEGMENTS] for sm in parts} == {b"\x02"}
    assert len({sm.tlvs[Tag.SAR_MSG_REF_NUM] for sm in parts}) == 1
    assert len(parts[0].short_message) <= 160 and parts[0].short_message[-1] != 0x1B
    assert b"".join(sm.short_message for sm in parts).count(b"\x1b") == 36


async def test_mo_payload_and_short_text(esme: Esme, smsc: SmscSimulator) -> None:
    assert smsc.send_mo("smsgw", "+79211234567", "4521", CYRILLIC, concat="payload") == 1
    assert smsc.send_mo("smsgw", "+79211234567", "4521", "STOP", ucs2=True) == 1
    payload, short = await mo_parts(esme, 2)
    assert payload.short_message == b""
    assert payload.tlvs[Tag.MESSAGE_PAYLOAD].decode("utf-16-be") == CYRILLIC
    assert (short.esm_class, short.data_coding, short.short_message) == (
        0, 8, "STOP".encode("utf-16-be"),
    )  # fmt: skip


async def test_mo_waits_for_a_receiver_and_is_redelivered(
    smsc: SmscSimulator, connect: Connect
) -> None:
    assert smsc.send_mo("smsgw", "+79211234567", "4521", "hello") == 1
    assert smsc.stats.receipts_pending == 1
    first = await connect()
    await first.bind(CommandId.BIND_RECEIVER)
    await first.expect(CommandId.DELIVER_SM)  # never acknowledged
    await first.close()
    second = await connect()
    await second.bind(CommandId.BIND_RECEIVER)
    [again] = await mo_parts(second, 1)
    assert again.short_message == b"hello"
    assert (smsc.stats.mo_parts_sent, smsc.stats.receipts_redelivered) == (2, 1)


# -- operator limits and per-session counters ------------------------------------------------


async def test_max_tps_refuses_a_burst(smsc: SmscSimulator, esme: Esme) -> None:
    smsc.update(max_tps=100.0, tps_burst=5)
    sm = ShortMessage("1", "2", b"b")
    await esme.send(*(p.submit_sm(seq, sm) for seq in range(1, 101)))
    statuses = [(await esme.expect_any(CommandId.SUBMIT_SM_RESP)).status for _ in range(100)]
    accepted = statuses.count(Status.ESME_ROK)
    assert 5 <= accepted <= 8  # the burst, and the odd token that came due meanwhile
    assert statuses.count(Status.ESME_RTHROTTLED) == 100 - accepted
    assert smsc.stats.over_tps == smsc.stats.throttled == 100 - accepted
    assert sum(smsc.stats.accepted_per_second.values()) == accepted


async def test_max_tps_holds_across_sessions(smsc: SmscSimulator, connect: Connect) -> None:
    """Two binds of one account pacing at 150/s each against a contract of 200/s."""
    smsc.update(max_tps=200.0, tps_burst=2)
    clients = [await connect() for _ in range(2)]
    for client in clients:
        await client.bind(CommandId.BIND_TRANSMITTER)
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await asyncio.gather(*(paced(client, 150, 1.0) for client in clients))
    elapsed = loop.time() - started
    accepted = sum(ok for ok, _ in results)
    assert accepted <= 200 * elapsed + 2  # never over the contract (plus its burst)
    assert smsc.stats.over_tps == sum(refused for _, refused in results) > 0
    numbers = smsc.sessions("smsgw")
    assert [smsc.stats.sessions[n].submits for n in numbers] == [150, 150]


async def paced(esme: Esme, rate: float, seconds: float) -> tuple[int, int]:
    """Submit at ``rate`` per second (one writer, answers read alongside)."""
    count = int(rate * seconds)
    sm = ShortMessage("1", "2", b"p")

    async def write() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n in range(count):
            await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
            await esme.send(p.submit_sm(n + 1, sm))

    writer = asyncio.create_task(write())
    statuses = [(await esme.expect_any(CommandId.SUBMIT_SM_RESP)).status for _ in range(count)]
    await writer
    ok = statuses.count(Status.ESME_ROK)
    return ok, count - ok


async def test_session_counters(smsc: SmscSimulator, connect: Connect) -> None:
    smsc.update(max_window=2, resp_delay=0.02, throttle_ratio=0.0)
    first, second = await connect(), await connect()
    await first.bind()
    await second.bind(CommandId.BIND_TRANSMITTER)
    sm = ShortMessage("1", "2", b"w")
    await first.send(*(p.submit_sm(seq, sm) for seq in range(1, 5)))
    await second.send(p.submit_sm(1, sm))
    for _ in range(4):
        await first.expect(CommandId.SUBMIT_SM_RESP)
    await second.expect(CommandId.SUBMIT_SM_RESP)
    one, two = (smsc.stats.sessions[n] for n in smsc.sessions())
    assert (one.mode, one.submits, one.accepted, one.max_outstanding) == ("transceiver", 4, 4, 4)
    assert (one.window_violations, two.window_violations) == (2, 0)
    assert (two.mode, two.submits, two.open) == ("transmitter", 1, True)
    assert smsc.stats.window_violations == 2
    await first.close()
    await until(lambda: not one.open)


async def test_hang_one_session(smsc: SmscSimulator, connect: Connect) -> None:
    first, second = await connect(), await connect()
    await first.bind()
    await second.bind()
    stuck, _ = smsc.sessions()
    smsc.set_hang(True, session=stuck)
    await first.submit(registered_delivery=0)
    await until(lambda: smsc.stats.ignored_while_hung == 1)
    await second.submit_ok()
    await second.receipt()  # the hung session is skipped
    smsc.update(receipt_delay=0.0)
    smsc.set_hang(False, session=stuck)
    await first.submit_ok(registered_delivery=0)
