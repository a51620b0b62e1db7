"""A tiny SMSC that binds correctly, then answers chosen submit_sm with garbage.

A real asyncio server socket, built on the simulator's codec (``loadtest.smpp_pdu``): each
bind is accepted, enquire_link answered, each submit_sm answered with a submit_sm_resp and
a DELIVRD receipt, except the submits picked by ``faults``: those get the fault's bytes in
place of their answer (and no receipt). A session gets at most one fault: one that comes due
on a session already answered with garbage (which its ESME is dropping, and may never read)
waits for the next submit on another session, so every fault is one the ESME can see.
It counts sessions opened, bound and closed by the ESME, and every deliver_sm_resp, so a
test can see who hung up and what was acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from loadtest import smpp_pdu as p
from loadtest.smpp_pdu import CommandId, MessageState

Fault = Callable[[int], bytes]  # the garbage, given the submit_sm's sequence


@dataclass
class _Session:
    faulted: bool = False


@dataclass
class RogueSmsc:
    faults: dict[int, Fault] = field(default_factory=dict)  # submit number (from 1) → fault
    port: int = 0
    opened: int = 0
    bound: int = 0
    hung_up: int = 0  # sessions the ESME closed
    submits: int = 0
    receipts_acked: int = 0
    nacks: list[int] = field(default_factory=list)  # generic_nack statuses received
    faulted: list[int] = field(default_factory=list)  # the submits answered with a fault
    dribble: int = 0  # > 0: answers leave in writes of this many octets, a pause apart
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _spent: set[int] = field(default_factory=set)  # the faults given

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened += 1
        self._writers.add(writer)
        pdus = p.PduReader()
        session = _Session()
        try:
            while data := await reader.read(65536):
                pdus.feed(data)
                answers = []
                while (pdu := pdus.next_pdu()) is not None:
                    answers.append(self._answer(pdu, session))
                await self._send(writer, b"".join(answers))
            self.hung_up += 1
        except ConnectionError:
            self.hung_up += 1
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        """All at once, or (``dribble``) cut anywhere, PDU boundaries included."""
        step = self.dribble or len(data) or 1
        for start in range(0, len(data), step):
            writer.write(data[start : start + step])
            await writer.drain()
            if self.dribble:
                await asyncio.sleep(0.001)

    def _answer(self, pdu: p.Pdu, session: _Session) -> bytes:
        command = pdu.command_id
        if command in p.BIND_COMMANDS:
            self.bound += 1
            return p.bind_resp(command, pdu.sequence, "rogue")
        if command == CommandId.ENQUIRE_LINK:
            return p.enquire_link_resp(pdu.sequence)
        if command == CommandId.UNBIND:
            return p.unbind_resp(pdu.sequence)
        if command == CommandId.DELIVER_SM_RESP:
            self.receipts_acked += 1
        elif command == CommandId.GENERIC_NACK:
            self.nacks.append(pdu.status)
        elif command == CommandId.SUBMIT_SM:
            return self._submitted(pdu, session)
        return b""

    def _submitted(self, pdu: p.Pdu, session: _Session) -> bytes:
        self.submits += 1
        due = [n for n in self.faults if n <= self.submits and n not in self._spent]
        if due and not session.faulted:
            self._spent.add(min(due))
            session.faulted = True
            self.faulted.append(self.submits)
            return self.faults[min(due)](pdu.sequence)
        message_id = f"r{self.submits:x}"
        text = p.receipt_text(
            message_id, MessageState.DELIVERED, 0, "2611231200", "2611231200", b""
        )
        receipt = p.ShortMessage("79211234567", "Acme", text, esm_class=p.ESM_CLASS_RECEIPT)
        return p.submit_sm_resp(pdu.sequence, message_id) + p.deliver_sm(
            0x10000 + self.submits, receipt
        )
