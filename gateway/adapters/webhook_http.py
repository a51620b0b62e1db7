"""The webhook sender's HTTP/1.1 client: kept-alive connections per origin, one request
at a time on each, and nothing a status callback does not need.

aiohttp's client cost about a fifth of the dispatch process's CPU at 2,000 callbacks/s
(docs/benchmarks.md). This one writes a prepared head and the body in one write and
frames the answer with ``gateway.core.http_reply`` (status, then the body dropped).
TLS is the event loop's, with certificates and host names verified. A host name goes
through the ``GuardedResolver`` (SSRF: every address it resolves to is checked); a
literal address is the caller's to check (``url_refusal``). No redirect is followed: a
3xx is an answer like any other that is not 2xx.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import ipaddress
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import unquote, urlsplit

from aiohttp.abc import AbstractResolver

from gateway.core.http_reply import BadResponse, ReplyReader

USER_AGENT = "smsgw-webhooks"


class ServerDisconnected(ConnectionError):
    """The receiver closed the connection before its answer was complete."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str  # as in the URL, brackets stripped
    port: int
    head: bytes  # "POST <target> HTTP/1.1" and the fixed fields, up to the per-call ones

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port


@functools.lru_cache(maxsize=4096)
def target(url: str) -> Target:
    """A callback URL's origin and request head; ValueError if it is no http(s) URL."""
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError("whitespace or control characters in the URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.netloc.rpartition("@")[2]
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"User-Agent: {USER_AGENT}"]
    if parts.username is not None:  # credentials in the URL: Basic, as browsers do
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        lines.append(f"Authorization: Basic {base64.b64encode(pair).decode()}")
    return Target(parts.scheme, parts.hostname, port, "\r\n".join(lines).encode())


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.used = False  # it has carried a request
        self.reused = False  # the current request is not its first (it may have gone stale)
        self._reader: ReplyReader | None = None
        self._waiter: asyncio.Future[ReplyReader] | None = None
        self._received = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._reader is None or self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: the connection is out of step
            return
        self._received = True
        try:
            done = self._reader.feed(data)
        except BadResponse as exc:
            self._waiter.set_exception(exc)
            self.close()
            return
        if done:
            self._waiter.set_result(self._reader)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter, reader = self._waiter, self._reader
        if waiter is None or waiter.done() or reader is None:
            return
        if reader.closed():
            waiter.set_result(reader)
        else:
            waiter.set_exception(ServerDisconnected("the receiver closed the connection"))

    @property
    def silent(self) -> bool:
        """Nothing of the answer came: a reused connection may just have been stale."""
        return not self._received

    async def exchange(self, request: bytes) -> ReplyReader:
        assert self.transport is not None
        self._reader, self._received = ReplyReader(), False
        self.reused, self.used = self.used, True
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class WebhookHttp:
    """POST with kept-alive connections, at most ``per_origin`` idle ones per origin."""

    def __init__(
        self,
        resolver: AbstractResolver,
        timeout_s: float,
        per_origin: int = 64,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._resolver = resolver
        self._timeout_s = timeout_s
        self._per_origin = per_origin
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """The receiver's status; raises TimeoutError, OSError (refused targets too),
        ValueError (a bad URL or a response that is no HTTP)."""
        goal = target(url)
        fields = "".join(f"\r\n{k}: {v}" for k, v in headers.items())
        request = b"%s%s\r\nContent-Length: %d\r\n\r\n%s" % (
            goal.head,
            fields.encode("latin-1"),
            len(body),
            body,
        )
        async with asyncio.timeout(self._timeout_s):
            return await self._post(goal, request)

    async def _post(self, goal: Target, request: bytes) -> int:
        conn = self._idle_connection(goal.origin) or await self._connect(goal)
        try:
            reply = await _exchange(conn, request)
        except ServerDisconnected:
            if not (conn.reused and conn.silent):
                raise
            conn = await self._connect(goal)  # a stale keep-alive: once more, afresh
            reply = await _exchange(conn, request)
        if reply.reusable and not conn.closed:
            self._park(goal.origin, conn)
        else:
            conn.close()
        return reply.status

    def _idle_connection(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        self._idle.pop(origin, None)
        return None

    def _park(self, origin: tuple[str, str, int], conn: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) < self._per_origin:
            idle.append(conn)
        else:
            conn.close()

    async def _connect(self, goal: Target) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = self._context() if goal.scheme == "https" else None
        name = goal.host if tls is not None else None
        failure: OSError | None = None
        for address in await self._addresses(goal):
            try:
                _, conn = await loop.create_connection(
                    _Connection, address, goal.port, ssl=tls, server_hostname=name
                )
                return conn
            except OSError as exc:  # ssl.SSLError is one too
                failure = exc
        raise failure or OSError(f"no address for {goal.host}")

    async def _addresses(self, goal: Target) -> list[str]:
        try:
            ipaddress.ip_address(goal.host)
        except ValueError:
            found = await self._resolver.resolve(goal.host, goal.port, socket.AF_UNSPEC)
            return [item["host"] for item in found]
        return [goal.host]

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


async def _exchange(conn: _Connection, request: bytes) -> ReplyReader:
    try:
        return await conn.exchange(request)
    except BaseException:  # a timeout or a cancel too: the answer may still come
        conn.close()
        raise
