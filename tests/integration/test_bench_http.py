"""The benchmark's lean HTTP parts on real TCP: the load generator's client against an
aiohttp server, and the webhook receiver against aiohttp's client with real signatures."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import aiohttp
from aiohttp import web

from gateway.core.signing import headers, new_secret
from loadtest.loadgen import LeanClient, Pace, drive
from loadtest.webhook_sink import WebhookSink
from tests.loopback import listening


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    if request.headers.get("Authorization") != "Bearer k":
        return web.json_response({"error": "key"}, status=401)
    if body == b"busy":
        return web.json_response({"error": "busy"}, status=503)
    return web.Response(status=202, body=body[::-1], content_type="application/json")


async def test_the_lean_client_reads_statuses_and_bodies_over_kept_connections() -> None:
    app = web.Application()
    app.router.add_post("/echo", _echo)
    async with listening(app) as port:
        client = LeanClient("127.0.0.1", port, {"Authorization": "Bearer k"}, limit=2)
        answers = [await client.post("/echo", b"abc" * n) for n in (1, 2000)]
        assert answers == [(202, b"cba"), (202, b"cba" * 2000)]
        assert len(client._idle) == 1  # one connection, reused
        stranger = LeanClient("127.0.0.1", port, {}, limit=1)
        assert (await stranger.post("/echo", b"x"))[0] == 401
        client.close()
        stranger.close()


async def test_a_connection_the_server_closed_while_idle_is_not_written_to() -> None:
    app = web.Application()
    app.router.add_post("/echo", _echo)
    async with listening(app, keepalive_timeout=0.1) as port:
        client = LeanClient("127.0.0.1", port, {"Authorization": "Bearer k"}, limit=2)
        assert await client.post("/echo", b"ab") == (202, b"ba")
        await asyncio.sleep(0.3)  # the server closes the kept-alive connection
        assert await asyncio.wait_for(client.post("/echo", b"cd"), 5) == (202, b"dc")
        client.close()


async def test_drive_counts_messages_and_retries_refusals() -> None:
    calls = 0

    async def busy_once(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        await request.read()
        status = 503 if calls == 1 else 202
        return web.json_response({"accepted": [{"index": 0}], "rejected": []}, status=status)

    app = web.Application()
    app.router.add_post("/batch", busy_once)
    async with listening(app) as port:
        client = LeanClient("127.0.0.1", port, {}, limit=4)
        bodies = iter([(b"{}", 1)] * 5)
        tally = await drive(client, "/batch", bodies, Pace(concurrency=2, rate=200.0))
        client.close()
    assert tally.accepted == 5 and tally.errors == {}
    assert tally.retries == {"HTTP 503": 1} and len(tally.latencies_ms) == 5


async def test_the_sink_times_signed_callbacks_and_refuses_forged_ones() -> None:
    sink = WebhookSink(expected=2)
    sink.secret = new_secret()
    port = await sink.start()
    url = f"http://127.0.0.1:{port}/hook"
    accepted = datetime.now(UTC).isoformat()

    def callback(message_id: str) -> bytes:
        data = {"id": message_id, "status": "delivered", "accepted_at": accepted}
        return json.dumps({"type": "message.status", "data": data}).encode()

    try:
        async with aiohttp.ClientSession() as http:
            for i, secret in enumerate((sink.secret, sink.secret, new_secret(), sink.secret)):
                body = callback(str(min(i, 1)))  # the fourth repeats the second
                signed = headers(secret, f"evt_{i}", int(time.time()), body)
                async with http.post(url, data=body, headers=signed) as response:
                    assert response.status == (400 if i == 2 else 204)
    finally:
        await sink.stop()
    assert sink.all_in.is_set() and sink.statuses == {"delivered": 2}
    assert sink.bad_signatures == 1 and sink.repeats == 1
    assert len(sink.latencies_ms) == 2 and all(ms >= 0 for ms in sink.latencies_ms)
