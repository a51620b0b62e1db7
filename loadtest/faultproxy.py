"""A TCP proxy of our own that injects network faults for real: delay, blackhole, refuse, cut.

Theory of operation
-------------------
The proxy listens on one port and opens one upstream connection per client connection.
Two pump tasks per connection copy bytes, one per direction. Each chunk is looked at
under the mode of the moment:

- ``pass``: forwarded as it comes;
- ``delay``: held ``delay_ms`` before it is forwarded (order is kept: a pump is sequential);
- ``blackhole``: read and thrown away, as a link that lost its route; new connections are
  accepted and go nowhere (no upstream is opened), so a client sees a silent peer, not a
  refusal;
- ``refuse``: new connections are closed at once (live ones still pass).

``cut()`` aborts every live connection, both sides (an RST, as a dead middlebox does). A
fault test combines them: ``cut()`` then ``blackhole`` is a partition, ``cut()`` then
``refuse`` a server that went away.

The command line runs one proxy and takes commands on stdin, one per line (``pass``,
``delay MS``, ``blackhole``, ``refuse``, ``cut``), answering ``ok …`` on stdout, so a test
can drive it as a separate process: ``python -m loadtest.faultproxy --upstream HOST:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import logging
import sys
from dataclasses import dataclass

log = logging.getLogger("loadtest.faultproxy")

CHUNK = 65536


class Mode(enum.Enum):
    PASS = "pass"
    DELAY = "delay"
    BLACKHOLE = "blackhole"
    REFUSE = "refuse"


@dataclass
class ProxyStats:
    accepted: int = 0
    refused: int = 0
    cut: int = 0
    bytes_forwarded: int = 0
    bytes_dropped: int = 0


class _Link:
    """One client connection and its upstream (None while blackholed from the start)."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()


class FaultProxy:
    """``listen_port`` (0: any free one) on ``listen_host`` → ``upstream``."""

    def __init__(
        self, upstream: tuple[str, int], listen_host: str = "127.0.0.1", listen_port: int = 0
    ) -> None:
        self.upstream = upstream
        self.mode = Mode.PASS
        self.delay_ms = 0.0
        self.stats = ProxyStats()
        self._listen = (listen_host, listen_port)
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, *self._listen, backlog=1024)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the proxy is not listening")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def live(self) -> int:
        return len(self._links)

    # -- control -------------------------------------------------------------------------

    def set_mode(self, mode: Mode, delay_ms: float = 0.0) -> None:
        self.mode, self.delay_ms = mode, delay_ms

    def cut(self) -> int:
        """Abort every live connection; return how many there were."""
        links, self._links = self._links, set()
        for link in links:
            link.abort()
        self.stats.cut += len(links)
        return len(links)

    def command(self, line: str) -> str:
        """Apply one text command (the CLI's); return the answer."""
        word, _, arg = line.strip().partition(" ")
        if word == "cut":
            return f"ok cut {self.cut()}"
        try:
            mode = Mode(word)
            delay = float(arg or 0) if mode is Mode.DELAY else 0.0
        except ValueError:
            return f"error: unknown command {line.strip()!r}"
        self.set_mode(mode, delay)
        return f"ok {mode.value}"

    # -- connections ---------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode is Mode.REFUSE:
            self.stats.refused += 1
            writer.transport.abort()
            return
        self.stats.accepted += 1
        link = _Link(writer)
        self._links.add(link)
        try:
            await self._serve(link, reader)
        finally:
            self._links.discard(link)
            link.abort()

    async def _serve(self, link: _Link, client_reader: asyncio.StreamReader) -> None:
        if self.mode is Mode.BLACKHOLE:
            await self._drain(client_reader)  # a silent peer until cut or the client leaves
            return
        try:
            up_reader, link.upstream = await asyncio.open_connection(*self.upstream)
        except OSError:
            return  # upstream down: the client sees its connection closed
        async with asyncio.TaskGroup() as group:
            link.tasks = [
                group.create_task(self._pump(client_reader, link.upstream, link)),
                group.create_task(self._pump(up_reader, link.client, link)),
            ]

    async def _drain(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(CHUNK):
                self.stats.bytes_dropped += len(data)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        try:
            while data := await reader.read(CHUNK):
                await self._forward(data, writer)
        except OSError:
            pass
        link.abort()  # one side gone: end both, as a TCP proxy does

    async def _forward(self, data: bytes, writer: asyncio.StreamWriter) -> None:
        if self.mode is Mode.DELAY and self.delay_ms > 0:
            await asyncio.sleep(self.delay_ms / 1000)
        if self.mode is Mode.BLACKHOLE:
            self.stats.bytes_dropped += len(data)
            return
        writer.write(data)
        await writer.drain()
        self.stats.bytes_forwarded += len(data)


# -- command line ----------------------------------------------------------------------------


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


async def _read_commands(proxy: FaultProxy) -> None:
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        if line.strip():
            print(proxy.command(line), flush=True)


async def serve(upstream: tuple[str, int], listen: tuple[str, int]) -> None:
    """Run until stdin closes; announce the address on stdout."""
    async with FaultProxy(upstream, *listen) as proxy:
        print(f"listening on {listen[0]}:{proxy.port}", flush=True)
        await _read_commands(proxy)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="faultproxy",
        description="TCP proxy with faults; stdin commands: pass, delay MS, blackhole, refuse, cut",
    )
    parser.add_argument("--upstream", type=_address, required=True, help="HOST:PORT to forward to")
    parser.add_argument("--listen", type=_address, default=("127.0.0.1", 0), help="HOST:PORT")
    args = parser.parse_args(argv)
    logging.basicConfig(level="WARNING")
    asyncio.run(serve(args.upstream, args.listen))


if __name__ == "__main__":
    main()
