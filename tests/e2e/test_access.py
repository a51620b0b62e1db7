"""Access control over real HTTP: scopes, revocation, request limits, sender ids, SSRF."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import aiopg
import pytest

from gateway.adapters import client_store
from gateway.core.access import Scope
from gateway.core.api_limits import ApiLimitSettings
from gateway.embedded import ServerUrls
from gateway.settings import Settings, WebhookSettings
from loadtest.smsc import SmscSimulator
from smsgw.runner import serving
from tests.e2e.conftest import Receiver, count, gateway_settings, wait_for

MESSAGE = {"to": "+79211234567", "text": "access"}


@asynccontextmanager
async def gateway(urls: ServerUrls, smsc: SmscSimulator, **changes: Any) -> AsyncIterator[str]:
    settings: Settings = dataclasses.replace(gateway_settings(smsc.port), **changes)
    async with serving(settings, urls):
        yield f"http://127.0.0.1:{settings.http.port}"


async def call(
    base: str, method: str, path: str, key: str | None, **kwargs: Any
) -> tuple[int, dict[str, Any], Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    headers |= kwargs.pop("headers", {})
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, base + path, headers=headers, **kwargs) as response,
    ):
        return response.status, dict(response.headers), await response.json()


@pytest.fixture
async def base(server_urls: ServerUrls, clean: None, smsc: SmscSimulator) -> AsyncIterator[str]:
    async with gateway(server_urls, smsc) as url:
        yield url


async def test_each_route_needs_its_scope(base: str, pool: aiopg.Pool) -> None:
    created = await client_store.create(pool, "scoped", default_sender="Shop")
    sender = await client_store.add_key(pool, created.client.id, {Scope.SEND})
    reader = await client_store.add_key(pool, created.client.id, {Scope.READ})
    status, _, sent = await call(base, "POST", "/v1/messages", sender, json=MESSAGE)
    assert status == 202
    status, _, body = await call(base, "GET", f"/v1/messages/{sent['id']}", sender)
    assert status == 403
    assert body["error"] == {
        "code": "scope_missing",
        "field": "api_key",
        "scope": "read",
        "message": "this API key lacks the 'read' scope this call needs",
    }
    assert (await call(base, "GET", f"/v1/messages/{sent['id']}", reader))[0] == 200
    status, _, body = await call(base, "POST", "/v1/messages", reader, json=MESSAGE)
    assert status == 403 and body["error"]["scope"] == "send"
    status, _, body = await call(base, "GET", "/v1/providers", reader)
    assert status == 403 and body["error"]["scope"] == "admin"
    assert (await call(base, "GET", "/v1/providers", created.api_key))[0] == 200  # all scopes


async def test_a_revoked_key_is_refused_within_a_second(base: str, pool: aiopg.Pool) -> None:
    created = await client_store.create(pool, "revoked", default_sender="Shop")
    key = await client_store.add_key(pool, created.client.id, {Scope.READ})
    assert (await call(base, "GET", "/v1/balance", key))[0] == 200  # now cached
    assert await client_store.revoke(pool, key[:10]) == 1
    revoked_at = time.monotonic()

    async def refused() -> bool:
        return (await call(base, "GET", "/v1/balance", key))[0] == 401

    await wait_for(refused, within=3.0)
    assert time.monotonic() - revoked_at <= 1.5
    assert (await call(base, "GET", "/v1/balance", created.api_key))[0] == 200
    [first, second] = await client_store.keys_of(pool, created.client.id)
    assert first.revoked_at is None and second.revoked_at is not None
    assert second.prefix == key[:10] and second.scopes == ("read",)


async def test_a_flooding_key_gets_429_and_other_keys_do_not(
    server_urls: ServerUrls, clean: None, smsc: SmscSimulator, pool: aiopg.Pool
) -> None:
    limits = ApiLimitSettings(key_rps=2, key_burst=5)
    created = await client_store.create(pool, "flood", default_sender="Shop")
    other = await client_store.add_key(pool, created.client.id)
    async with gateway(server_urls, smsc, api_limits=limits) as url:
        answers = [await call(url, "GET", "/v1/balance", created.api_key) for _ in range(8)]
        assert [a[0] for a in answers].count(200) == 5
        status, headers, body = answers[-1]
        assert status == 429 and int(headers["Retry-After"]) >= 1
        assert body["error"]["code"] == "too_many_requests"
        assert body["error"]["limit"] == "api_key_rps" and body["error"]["value"] == 2
        assert (await call(url, "GET", "/v1/balance", other))[0] == 200


async def test_bad_keys_are_stopped_per_ip_before_any_lookup(
    server_urls: ServerUrls, clean: None, smsc: SmscSimulator
) -> None:
    limits = ApiLimitSettings(ip_rps=1, ip_burst=10)
    async with gateway(server_urls, smsc, api_limits=limits) as url:
        statuses = [(await call(url, "GET", "/v1/balance", f"sk_guess{i}"))[0] for i in range(15)]
        assert statuses == [401] * 10 + [429] * 5
        _, _, body = await call(url, "GET", "/v1/health", None)
        assert body["error"]["limit"] == "ip_rps"


async def test_forwarded_for_counts_the_client_behind_a_trusted_proxy(
    server_urls: ServerUrls, clean: None, smsc: SmscSimulator
) -> None:
    limits = ApiLimitSettings(ip_rps=1, ip_burst=2, trusted_proxies=("127.0.0.0/8",))
    async with gateway(server_urls, smsc, api_limits=limits) as url:

        async def health(client: str) -> int:
            forwarded = {"X-Forwarded-For": f"198.51.100.1, {client}"}
            return (await call(url, "GET", "/v1/health", None, headers=forwarded))[0]

        assert [await health("203.0.113.1") for _ in range(3)] == [200, 200, 429]
        assert await health("203.0.113.2") == 200  # another client behind the same proxy


async def test_senders_outside_the_allow_list_are_refused(base: str, pool: aiopg.Pool) -> None:
    created = await client_store.create(pool, "senders", default_sender="Shop")
    await client_store.set_senders(pool, created.client.id, ["MyShop", "79001234567"])
    key = created.api_key
    await wait_for(lambda: _refused_sender(base, key), within=3.0)  # the key cache: ≤ 1 s
    for sender in ("MyShop", "+79001234567", "Shop"):
        status, _, _ = await call(
            base, "POST", "/v1/messages", key, json=MESSAGE | {"from": sender}
        )
        assert status == 202, sender
    batch = {"messages": [MESSAGE, MESSAGE | {"from": "Bank"}]}
    status, _, body = await call(base, "POST", "/v1/messages/batch", key, json=batch)
    assert status == 202 and len(body["accepted"]) == 1
    assert body["rejected"][0]["field"] == "messages[1].from"
    assert body["rejected"][0]["code"] == "sender_not_allowed"


async def _refused_sender(base: str, key: str) -> bool:
    status, _, body = await call(base, "POST", "/v1/messages", key, json=MESSAGE | {"from": "Bank"})
    if status != 422:
        return False
    assert body["error"] == {
        "code": "invalid_field",
        "field": "from",
        "message": "not one of this client's sender ids",
    }
    return True


PRIVATE_HOOKS = [
    "http://127.0.0.1:8080/hook",
    "http://2130706433/hook",
    "http://0x7f.1/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/hook",
    "http://localhost/hook",
    "http://user@example.com/hook",
]


async def test_callbacks_to_private_addresses_are_refused_at_accept(
    server_urls: ServerUrls, clean: None, smsc: SmscSimulator, pool: aiopg.Pool
) -> None:
    created = await client_store.create(pool, "ssrf", default_sender="Shop")
    async with gateway(server_urls, smsc, webhooks=WebhookSettings()) as url:  # the default
        for hook in PRIVATE_HOOKS:
            message = MESSAGE | {"callback_url": hook}
            status, _, body = await call(url, "POST", "/v1/messages", created.api_key, json=message)
            assert status == 422 and body["error"]["field"] == "callback_url", hook
        message = MESSAGE | {"callback_url": "https://hooks.example.com/sms"}
        assert (await call(url, "POST", "/v1/messages", created.api_key, json=message))[0] == 202


def _loopback_name() -> str:
    """A name that resolves to loopback but is not named like it (as after a rebinding)."""
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
    except OSError:
        pytest.skip("the host name does not resolve")
    if not address.startswith("127."):
        pytest.skip("the host name does not resolve to loopback here")
    return name


async def test_a_name_resolving_to_loopback_at_send_time_is_refused(
    server_urls: ServerUrls,
    clean: None,
    smsc: SmscSimulator,
    pool: aiopg.Pool,
    receiver: Receiver,
) -> None:
    hook = f"http://{_loopback_name()}:{receiver.port}/hook"
    created = await client_store.create(pool, "rebind", default_sender="Shop")
    hooks = WebhookSettings(retry_base_s=0.2, poll_interval_s=0.1)  # default: public only
    async with gateway(server_urls, smsc, webhooks=hooks) as url:
        message = MESSAGE | {"callback_url": hook}
        status, _, _ = await call(url, "POST", "/v1/messages", created.api_key, json=message)
        assert status == 202  # a name: checked when it is resolved
        sql = "SELECT count(*) FROM webhook_outbox WHERE last_error LIKE 'refused: %%'"
        await wait_for(lambda: _at_least(pool, sql, 1), within=15.0)
    assert receiver.calls == []


async def _at_least(pool: aiopg.Pool, sql: str, n: int) -> bool:
    return await count(pool, sql) >= n
