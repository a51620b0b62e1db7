"""The webhook sender's HTTP client against real servers on loopback: kept-alive
connections, chunked and closing answers, stale connections, timeouts, TLS, refused
names and garbage."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from gateway.adapters.guarded_resolver import GuardedResolver, RefusedTarget
from gateway.adapters.webhook_http import WebhookHttp
from gateway.core.http_reply import BadResponse
from gateway.core.ssrf import parse_networks
from tests.tls_certs import make_certs

LOOPBACK = parse_networks(("127.0.0.0/8", "::1/128"))
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Receiver:
    def __init__(self) -> None:
        self.peers: set[tuple[str, int]] = set()
        self.seen: list[tuple[str, dict[str, str], bytes]] = []

    async def take(self, request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        self.peers.add(request.transport.get_extra_info("peername"))
        self.seen.append((request.path_qs, dict(request.headers), await request.read()))
        if request.path == "/chunked":
            response = web.StreamResponse(status=201)
            response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(b"part one, ")
            await response.write(b"part two")
            await response.write_eof()
            return response
        if request.path == "/close":
            return web.Response(status=200, text="bye", headers={"Connection": "close"})
        if request.path == "/slow":
            await asyncio.sleep(2)
        if request.path == "/missing":
            return web.Response(status=404, text="no such hook")
        return web.Response(status=204)


async def _serve(
    app: web.Application, ssl_context: ssl.SSLContext | None = None, keepalive: float = 75.0
) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, keepalive_timeout=keepalive)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    return runner, runner.addresses[0][1]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, int]]:
    found = Receiver()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", found.take)
    runner, port = await _serve(app)
    yield found, port
    await runner.cleanup()


def _client(timeout_s: float = 5.0, context: ssl.SSLContext | None = None) -> WebhookHttp:
    return WebhookHttp(GuardedResolver(LOOPBACK), timeout_s, 8, context)


async def test_posts_reuse_one_connection_and_carry_headers_and_body(
    receiver: tuple[Receiver, int],
) -> None:
    found, port = receiver
    http = _client()
    for i in range(20):
        status = await http.post(f"http://127.0.0.1:{port}/hook?n={i}", b'{"a":1}', {"x-sig": "s"})
        assert status == 204
    assert len(found.peers) == 1
    path, headers, body = found.seen[-1]
    assert (path, body, headers["x-sig"]) == ("/hook?n=19", b'{"a":1}', "s")
    assert headers["Host"] == f"127.0.0.1:{port}"
    http.close()


async def test_concurrent_posts_chunked_closing_and_error_answers(
    receiver: tuple[Receiver, int],
) -> None:
    found, port = receiver
    http = _client()
    base = f"http://127.0.0.1:{port}"
    statuses = await asyncio.gather(*(http.post(f"{base}/h{i}", b"{}", {}) for i in range(10)))
    assert statuses == [204] * 10 and len(found.peers) <= 10
    assert await http.post(f"{base}/chunked", b"{}", {}) == 201
    assert await http.post(f"{base}/close", b"{}", {}) == 200
    assert await http.post(f"{base}/missing", b"{}", {}) == 404
    assert await http.post(f"{base}/after", b"{}", {}) == 204
    http.close()


async def test_a_connection_the_receiver_closed_while_idle_is_not_an_error() -> None:
    found = Receiver()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", found.take)
    runner, port = await _serve(app, keepalive=0.1)
    http = _client()
    try:
        for _ in range(3):
            assert await http.post(f"http://127.0.0.1:{port}/h", b"{}", {}) == 204
            await asyncio.sleep(0.3)  # the receiver closes the idle connection
        assert len(found.peers) == 3
    finally:
        http.close()
        await runner.cleanup()


async def test_a_slow_receiver_times_out(receiver: tuple[Receiver, int]) -> None:
    _, port = receiver
    http = _client(timeout_s=0.3)
    with pytest.raises(TimeoutError):
        await http.post(f"http://127.0.0.1:{port}/slow", b"{}", {})
    assert await http.post(f"http://127.0.0.1:{port}/fast", b"{}", {}) == 204
    http.close()


async def test_tls_is_verified(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(certs.cert, certs.key)
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", Receiver().take)
    runner, port = await _serve(app, ssl_context=server)
    trusting = _client(context=ssl.create_default_context(cafile=str(certs.ca)))
    untrusting = _client()
    try:
        assert await trusting.post(f"https://127.0.0.1:{port}/h", b"{}", {}) == 204
        with pytest.raises(ssl.SSLError):
            await untrusting.post(f"https://127.0.0.1:{port}/h", b"{}", {})
    finally:
        trusting.close()
        untrusting.close()
        await runner.cleanup()


async def test_a_name_resolving_to_a_refused_address_is_not_connected() -> None:
    http = WebhookHttp(GuardedResolver(parse_networks(())), 5.0)
    with pytest.raises(RefusedTarget):
        await http.post("http://localhost:9/h", b"{}", {})
    with pytest.raises(ValueError):
        await http.post("ftp://127.0.0.1/h", b"{}", {})


async def test_garbage_from_the_receiver_is_a_bad_response() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1000)
        writer.write(b"SMPP is not HTTP\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    http = _client()
    try:
        with pytest.raises(BadResponse):
            await http.post(f"http://127.0.0.1:{port}/h", b"{}", {})
    finally:
        http.close()
        server.close()
        await server.wait_closed()
