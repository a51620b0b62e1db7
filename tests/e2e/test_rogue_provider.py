"""A provider's garbage never corrupts a message's state: HTTP in, a rogue SMSC out.

The gateway sends through ``tests.rogue_smsc``, which answers some submit_sm with a bad
PDU. Each such session ends (counted in ``smsgw_provider_malformed_pdus_total``), the part
in flight on it fails for now and is sent again, and every message still ends delivered
under a provider id the SMSC really gave: no garbage id, no message stuck, none lost.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import aiopg
import pytest

from gateway.adapters import pg
from gateway.embedded import ServerUrls
from tests.e2e.conftest import Api, gateway_settings, serving_api
from tests.rogue_smsc import RogueSmsc

COUNT = 30


@pytest.fixture
async def rogue() -> AsyncIterator[RogueSmsc]:
    garbage = {
        4: lambda seq: struct.pack(">IIII", 8, 0x80000004, 0, seq),
        9: lambda seq: struct.pack(">IIII", 16, 0x999, 0, seq),
        15: lambda seq: struct.pack(">IIII", 20, 0x80000004, 0, seq) + b"\xff\xfe\xfd\xfc",
    }
    smsc = RogueSmsc(faults=garbage)
    await smsc.start()
    yield smsc
    await smsc.stop()


@pytest.fixture
async def api(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, rogue: RogueSmsc
) -> AsyncIterator[Api]:
    async with serving_api(gateway_settings(rogue.port), server_urls, pool) as api:
        yield api


async def test_garbage_from_the_smsc_never_corrupts_a_message(api: Api, rogue: RogueSmsc) -> None:
    ids = []
    for n in range(COUNT):  # one at a time: faults land on live sessions (RogueSmsc)
        status, body = await api.send(to="+79211234567", text=f"through a rogue SMSC {n}")
        assert status == 202, body
        ids.append(body["id"])
    found = await asyncio.gather(*(api.wait_status(i, "delivered", within=30) for i in ids))

    # The parts in flight on the 3 refused sessions were sent again (at least once).
    assert len(rogue.faulted) == 3
    assert rogue.submits >= COUNT + 3
    given = {f"r{n:x}" for n in range(1, rogue.submits + 1) if n not in rogue.faulted}
    assert {m["status"] for m in found} == {"delivered"}
    rows = await pg.fetch(api.pool, "SELECT message_id, provider_message_id FROM message_parts")
    assert sorted(str(message_id) for message_id, _ in rows) == sorted(ids)  # one part each
    assert given.issuperset(provider_id for _, provider_id in rows)
    # Each malformed PDU was nacked, but a nack can die with its session: closing a socket
    # that still holds unread answers sends RST, and the SMSC's kernel then drops what it
    # had not yet read. The gateway's own count below is exact.
    assert 1 <= len(rogue.nacks) <= 3
    snapshot = api.gateway.providers["sim"].snapshot()
    assert snapshot.malformed_pdus == 3
    async with api.http.get("/metrics") as response:
        assert 'smsgw_provider_malformed_pdus_total{provider="sim"} 3.0' in await response.text()
