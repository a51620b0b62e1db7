"""The load generator's webhook receiver: a lean HTTP/1.1 server for status callbacks.

On 2 cores the benchmark's own tools must not become the bottleneck (FACTS.md), and an
aiohttp server costs a few hundred µs a request; this one parses just what a callback
needs (the head, Content-Length, the body), keeps connections alive, verifies the
Standard Webhooks signature (``gateway.core.signing``) and answers 204. Each callback is
timed against the message's ``accepted_at`` in its payload (the gateway and this process
share the machine's clock); a message's first callback counts, a repeat is counted apart.
"""

from __future__ import annotations

import asyncio
import json
import time
from array import array
from datetime import datetime
from typing import cast

from gateway.core.signing import verify

NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
MAX_HEAD = 16 * 1024


class WebhookSink:
    def __init__(self, expected: int = 0) -> None:
        self.secret = ""  # the client's webhook secret, set once the client exists
        self.expected = expected
        self.latencies_ms = array("d")
        self.statuses: dict[str, int] = {}
        self.seen: set[str] = set()
        self.repeats = 0
        self.bad_signatures = 0
        self.bad_payloads = 0
        self.first_at = 0.0
        self.last_at = 0.0
        self.all_in = asyncio.Event()
        self.transports: set[asyncio.Transport] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for transport in list(self.transports):
                transport.close()
            await self._server.wait_closed()

    def take(self, headers: dict[str, str], body: bytes) -> bool:
        """Record one callback; False if its signature does not hold or it is no status."""
        now = time.time()
        if not verify(self.secret, headers, body, int(now)):
            self.bad_signatures += 1
            return False
        try:
            data = json.loads(body)["data"]
            accepted = datetime.fromisoformat(data["accepted_at"]).timestamp()
        except (ValueError, KeyError, TypeError):
            self.bad_payloads += 1
            return False
        if data["id"] in self.seen:
            self.repeats += 1
            return True
        self.seen.add(data["id"])
        self.statuses[data["status"]] = self.statuses.get(data["status"], 0) + 1
        self.latencies_ms.append((now - accepted) * 1000)
        self.first_at = self.first_at or now
        self.last_at = now
        if self.expected and len(self.seen) >= self.expected:
            self.all_in.set()
        return True


class _Connection(asyncio.Protocol):
    def __init__(self, sink: WebhookSink) -> None:
        self.sink = sink
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.sink.transports.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.sink.transports.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out = []
        while (request := self._next_request()) is not None:
            headers, body = request
            out.append(NO_CONTENT if self.sink.take(headers, body) else BAD_REQUEST)
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
            if out[-1] is BAD_REQUEST:  # it says "Connection: close"
                self.transport.close()

    def _next_request(self) -> tuple[dict[str, str], bytes] | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD and self.transport is not None:
                self.transport.close()
            return None
        headers = _headers(bytes(self.buffer[:end]))
        size = int(headers.get("content-length", "0"))
        if len(self.buffer) < end + 4 + size:
            return None
        body = bytes(self.buffer[end + 4 : end + 4 + size])
        del self.buffer[: end + 4 + size]
        return headers, body


def _headers(head: bytes) -> dict[str, str]:
    """Header names lower-cased; the request line is skipped."""
    found = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        found[name.strip().lower()] = value.strip()
    return found
