"""Fuzzing the SMSC simulator over real TCP: garbage ends only the session it came on.

Hypothesis draws a PDU (any command_id, a known one most of the time, with a random or
truncated body, a lying command_length), sent on a fresh connection, bound or not. The
simulator must answer or close that session, never raise out of its protocol callbacks
(which asyncio would only log), and keep serving a healthy bound session throughout. The
cases run with plain sockets in a worker thread while the simulator serves on the loop.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadtest import smpp_pdu as p
from loadtest.smpp_pdu import CommandId
from loadtest.smsc import SmscConfig, SmscSimulator

EXAMPLES = int(os.environ.get("SMSGW_FUZZ_EXAMPLES", "50"))
_KNOWN = sorted(int(c) for c in CommandId)

pdus = st.builds(
    lambda command, body, length, sequence: (
        struct.pack(">IIII", length(16 + len(body)), command, 0, sequence) + body
    ),
    st.sampled_from(_KNOWN) | st.integers(0, 0xFFFFFFFF),
    st.binary(max_size=300),
    st.sampled_from([lambda n: n, lambda n: n + 7, lambda n: max(0, n - 5), lambda n: 0xFFFFFF]),
    st.integers(1, p.MAX_SEQUENCE),
)


def _bind() -> bytes:
    bind = p.Bind("smsgw", "secret", "", 0x34, 0, 0, "")
    return p.encode_bind(CommandId.BIND_TRANSCEIVER, 1, bind)


def _exchange(port: int, data: bytes) -> None:
    """Send ``data`` and read until the simulator closes or goes quiet."""
    with socket.create_connection(
        ("127.0.0.1", port), timeout=0.1
    ) as sock:  # an answer, a close or quiet
        sock.sendall(data)
        try:
            while sock.recv(65536):
                pass
        except (TimeoutError, ConnectionError):
            pass


def _fuzz(port: int) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(pdu=pdus, bound=st.booleans())
    def one(pdu: bytes, bound: bool) -> None:
        _exchange(port, (_bind() if bound else b"") + pdu)

    one()


async def test_garbage_never_crashes_the_simulator_or_other_sessions() -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: errors.append(context))
    sim = SmscSimulator(SmscConfig(port=0, system_id="smsgw", password="secret"))
    await sim.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        writer.write(_bind())
        await asyncio.to_thread(_fuzz, sim.port)
        writer.write(p.enquire_link(2))  # the healthy session still answers
        async with asyncio.timeout(5):
            head = await reader.readexactly(16)  # bind_resp
            await reader.readexactly(struct.unpack(">I", head[:4])[0] - 16)
            answer = p.decode_pdu(await reader.readexactly(16))
        writer.close()
    finally:
        await sim.stop()
        loop.set_exception_handler(previous)
    assert answer.command_id == CommandId.ENQUIRE_LINK_RESP
    assert errors == []
