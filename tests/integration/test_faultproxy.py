"""The fault proxy over real sockets: an echo server behind it, a client in front."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable

import pytest

from gateway.embedded import free_port
from loadtest.faultproxy import FaultProxy, Mode


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


@pytest.fixture
async def proxy(echo_port: int) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(("127.0.0.1", echo_port)) as running:
        yield running


async def _connect(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def _roundtrip(proxy: FaultProxy, payload: bytes) -> bytes:
    reader, writer = await _connect(proxy)
    try:
        writer.write(payload)
        return await asyncio.wait_for(reader.readexactly(len(payload)), 5)
    finally:
        writer.close()


async def _closed_by_peer(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), 5) == b""
    except ConnectionError:
        return True


async def test_pass_forwards_both_ways(proxy: FaultProxy) -> None:
    payload = bytes(range(256)) * 1000
    assert await _roundtrip(proxy, payload) == payload
    assert proxy.stats.bytes_forwarded == 2 * len(payload)


async def test_delay_holds_each_chunk(proxy: FaultProxy) -> None:
    proxy.set_mode(Mode.DELAY, delay_ms=150)
    started = time.monotonic()
    assert await _roundtrip(proxy, b"ping") == b"ping"
    assert time.monotonic() - started >= 0.3  # held once each way


async def test_blackhole_swallows_live_and_new_connections(proxy: FaultProxy) -> None:
    live_reader, live_writer = await _connect(proxy)
    live_writer.write(b"a")
    assert await live_reader.readexactly(1) == b"a"
    proxy.set_mode(Mode.BLACKHOLE)
    new_reader, new_writer = await _connect(proxy)  # accepted, not refused
    for writer in (live_writer, new_writer):
        writer.write(b"lost")
    for reader in (live_reader, new_reader):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.3)
    assert proxy.stats.bytes_dropped == 8
    proxy.set_mode(Mode.PASS)
    live_writer.write(b"b")
    assert await live_reader.readexactly(1) == b"b"  # the link comes back as it was
    for writer in (live_writer, new_writer):
        writer.close()


async def test_refuse_closes_new_connections_only(proxy: FaultProxy) -> None:
    live_reader, live_writer = await _connect(proxy)
    proxy.set_mode(Mode.REFUSE)
    new_reader, new_writer = await _connect(proxy)
    assert await _closed_by_peer(new_reader)
    live_writer.write(b"still")
    assert await live_reader.readexactly(5) == b"still"
    assert proxy.stats.refused == 1
    live_writer.close()
    new_writer.close()


async def test_cut_aborts_every_live_connection(proxy: FaultProxy) -> None:
    links = [await _connect(proxy) for _ in range(3)]
    links[0][1].write(b"x")
    assert await links[0][0].readexactly(1) == b"x"
    await _until(lambda: proxy.live == 3)
    assert proxy.cut() == 3
    for reader, writer in links:
        assert await _closed_by_peer(reader)
        writer.close()
    assert await _roundtrip(proxy, b"new") == b"new"  # new connections pass again


async def test_upstream_down_closes_the_client(echo_port: int) -> None:
    async with FaultProxy(("127.0.0.1", free_port())) as proxy:
        reader, writer = await _connect(proxy)
        assert await _closed_by_peer(reader)
        writer.close()


def test_command_line_takes_commands_on_stdin(echo_port: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadtest.faultproxy", "--upstream", f"127.0.0.1:{echo_port}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().startswith("listening on 127.0.0.1:")
        answers = []
        for command in ("delay 20", "blackhole", "refuse", "cut", "pass", "bogus"):
            proc.stdin.write(command + "\n")
            proc.stdin.flush()
            answers.append(proc.stdout.readline().strip())
        assert answers == [
            "ok delay", "ok blackhole", "ok refuse", "ok cut 0", "ok pass",
            "error: unknown command 'bogus'",
        ]  # fmt: skip
    finally:
        proc.stdin.close()
        proc.wait(10)
        proc.stdout.close()
    assert proc.returncode == 0


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("condition not met")
