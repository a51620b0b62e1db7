"""Oversized, endless, slow and malformed requests over raw TCP: answered, then closed.

The gateway runs with a 64 KiB body limit, a batch limit of 5 and one-second timeouts, so
that each refusal shows at once; every read here has a deadline, so a server that waited
forever would fail the test rather than hang it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import aiopg
import pytest

from gateway.adapters import client_store
from gateway.embedded import ServerUrls, free_port
from gateway.settings import HttpSettings
from loadtest.smsc import SmscSimulator
from smsgw.runner import serving
from tests.e2e.conftest import Api, gateway_settings

LIMIT = 64 * 1024
DEADLINE = 10.0  # seconds any one exchange may take here; the server's timeouts are 1 s
HTTP = HttpSettings(
    port=0, max_body_bytes=LIMIT, max_batch=5, body_timeout_s=1.0, idle_timeout_s=1.0, linger_s=0.5
)


@pytest.fixture
async def api(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, smsc: SmscSimulator
) -> AsyncIterator[Api]:
    http = dataclasses.replace(HTTP, port=free_port())
    settings = dataclasses.replace(gateway_settings(smsc.port), http=http)
    async with serving(settings, server_urls) as gateway:
        created = await client_store.create(pool, "test-client", default_sender="Shop")
        headers = {"Authorization": f"Bearer {created.api_key}"}
        async with aiohttp.ClientSession(f"http://127.0.0.1:{http.port}", headers=headers) as s:
            yield Api(gateway, s, created, pool)


class Raw:
    """One raw HTTP/1.1 connection to the gateway."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, api: Api) -> Raw:
        port = api.gateway.settings.http.port
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def head(self, api: Api, path: str, *headers: str) -> bytes:
        key = f"Authorization: Bearer {api.client.api_key}"
        lines = [f"POST {path} HTTP/1.1", "Host: gw", key, *headers, "", ""]
        return "\r\n".join(lines).encode()

    async def response(self) -> tuple[int, dict[str, Any]]:
        async with asyncio.timeout(DEADLINE):
            status_line = await self.reader.readline()
            headers = {}
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers["content-length"]))
        return int(status_line.split()[1]), json.loads(body)

    async def closed_by_server(self) -> bool:
        """True once the server has closed the connection (EOF or reset), within DEADLINE."""
        try:
            async with asyncio.timeout(DEADLINE):
                while await self.reader.read(65536):
                    pass
        except ConnectionError:
            pass
        return True

    def close(self) -> None:
        self.writer.close()


async def test_content_length_over_the_limit_is_refused_unread(api: Api) -> None:
    raw = await Raw.open(api)
    raw.writer.write(raw.head(api, "/v1/messages/batch", f"Content-Length: {100 * LIMIT}"))
    status, body = await raw.response()  # no body octet was sent: it was never waited for
    assert (status, body["error"]["code"], body["error"]["field"]) == (
        413,
        "payload_too_large",
        "body",
    )
    assert await raw.closed_by_server()
    raw.close()


async def test_endless_chunked_upload_is_cut_off_and_closed(api: Api) -> None:
    raw = await Raw.open(api)
    raw.writer.write(raw.head(api, "/v1/messages", "Transfer-Encoding: chunked"))
    chunk = b"2000\r\n" + b"[" * 0x2000 + b"\r\n"
    cap = int(DEADLINE * 1000)  # chunks: only a server that never closed lets it get there
    sent = 0

    async def pump() -> None:  # 8 MB/s until the server's close stops it
        nonlocal sent
        with contextlib.suppress(ConnectionError):
            while sent < cap:
                raw.writer.write(chunk)
                await raw.writer.drain()
                sent += 1
                await asyncio.sleep(0.001)

    pumping = asyncio.create_task(pump())
    status, body = await raw.response()
    assert (status, body["error"]["field"]) == (413, "body")
    assert await raw.closed_by_server()
    async with asyncio.timeout(DEADLINE):
        await pumping  # the close ended the upload
    assert LIMIT // len(chunk) < sent < cap
    raw.close()


async def test_slow_body_times_out_with_408(api: Api) -> None:
    raw = await Raw.open(api)
    raw.writer.write(raw.head(api, "/v1/messages", "Content-Length: 1000") + b'{"to": ')
    status, body = await raw.response()
    assert (status, body["error"]["code"], body["error"]["field"]) == (
        408,
        "request_timeout",
        "body",
    )
    assert await raw.closed_by_server()
    raw.close()


async def test_slowloris_request_head_is_closed(api: Api) -> None:
    raw = await Raw.open(api)
    raw.writer.write(b"POST /v1/messages HTTP/1.1\r\nHost: gw\r\n")
    trickled = 0

    async def trickle() -> None:  # one header line a tenth of a second, forever
        nonlocal trickled
        with contextlib.suppress(ConnectionError):
            while trickled < 10 * DEADLINE:
                raw.writer.write(f"X-Slow-{trickled}: 1\r\n".encode())
                await raw.writer.drain()
                trickled += 1
                await asyncio.sleep(0.1)

    trickling = asyncio.create_task(trickle())
    assert await raw.closed_by_server()
    trickling.cancel()
    await asyncio.wait({trickling})
    assert trickled < 10 * DEADLINE
    raw.close()


async def test_a_batch_over_the_limit_is_refused_before_its_items_are_read(api: Api) -> None:
    items = [{"to": "not a number", "text": ""}] * 6  # each invalid: never looked at
    async with api.http.post("/v1/messages/batch", json={"messages": items}) as response:
        body = await response.json()
    assert (response.status, body["error"]["field"]) == (422, "messages")


async def test_deeply_nested_json_is_a_400(api: Api) -> None:
    nested = b"[" * 30_000 + b"]" * 30_000  # within the size limit; too deep for json
    async with api.http.post("/v1/messages", data=nested) as response:
        body = await response.json()
    assert (response.status, body["error"]["field"]) == (400, "body")


async def test_broken_chunked_encoding_is_a_400_and_closed(api: Api) -> None:
    """aiohttp's HTTP parser answers this one itself (a plain-text 400), before any handler."""
    raw = await Raw.open(api)
    raw.writer.write(raw.head(api, "/v1/messages", "Transfer-Encoding: chunked") + b"zz\r\n{}")
    async with asyncio.timeout(DEADLINE):
        status_line = await raw.reader.readline()
    assert status_line.split()[1] == b"400"
    assert await raw.closed_by_server()
    raw.close()


async def test_unicode_digits_are_not_numbers(api: Api) -> None:
    """ "²".isdigit() is true, and int("²") raises: found by reading the handlers."""
    async with api.http.get("/v1/rates", params={"to": "+79211234567", "parts": "²"}) as response:
        body = await response.json()
    assert (response.status, body["error"]["field"]) == (422, "parts")


async def test_a_nul_in_a_query_parameter_is_a_422(api: Api) -> None:
    """PostgreSQL text cannot hold NUL: found by schemathesis on ``after``."""
    async with api.http.get("/v1/opt-outs", params={"after": "a\0b"}) as response:
        body = await response.json()
    assert (response.status, body["error"]["field"]) == (422, "after")


async def test_a_nul_in_a_json_string_is_a_422_naming_the_field(api: Api) -> None:
    items = [{"to": "+79211234567", "text": "fine"}, {"to": "+79211234567", "text": "a\0b"}]
    async with api.http.post("/v1/messages/batch", json={"messages": items}) as response:
        body = await response.json()
    assert (response.status, body["error"]["field"]) == (422, "messages[1].text")
    async with api.http.post("/v1/messages", json=items[1]) as response:
        body = await response.json()
    assert (response.status, body["error"]["field"]) == (422, "text")
