"""The HTTP provider against the HTTP provider simulator, in-process, over real TCP.

Receipts and inbound messages come back as the simulator's signed callbacks to a small
aiohttp server standing in for the gateway's ``POST /v1/receipts/{provider}``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

import pytest
from aiohttp import web

from gateway.config_schema import build
from loadtest.http_sim import HttpSimConfig, HttpSimulator
from providers.base import (
    InboundPart,
    ProviderPermanentError,
    ProviderTemporaryError,
    Receipt,
    ReceiptStatus,
    Submission,
)
from providers.http import CallbackRejected, HttpProvider, HttpSettings
from providers.http.dialects import JSON
from providers.http.parse import signature

CYRILLIC = "Ваш код: 4821. Никому не сообщайте его — «Ёлка» & {друзья} 100%"
NUMBER = "+79211234567"
DEADLINE = 10.0

Factory = Callable[..., Awaitable[HttpProvider]]


def submission(message_id: int = 1, text: str = "hello", **changes: Any) -> Submission:
    return dataclasses.replace(Submission(message_id, NUMBER, "Acme", text), **changes)


class Hooks:
    """The gateway's receipts endpoint: each callback goes to its provider's sinks."""

    def __init__(self) -> None:
        self.providers: dict[str, HttpProvider] = {}
        self.receipts: asyncio.Queue[Receipt] = asyncio.Queue()
        self.inbound: asyncio.Queue[InboundPart] = asyncio.Queue()
        self.refused: list[int] = []
        self.url = ""

    async def receive(self, request: web.Request) -> web.Response:
        provider = self.providers[request.match_info["provider"]]
        try:
            await provider.handle_callback(request.headers, await request.read(), str(request.url))
        except CallbackRejected as exc:
            self.refused.append(exc.status)
            return web.Response(status=exc.status, text=exc.reason)
        return web.Response(status=204)

    async def garbage(self, request: web.Request) -> web.Response:
        return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")

    def receipt_sink(self, receipt: Receipt) -> None:
        self.receipts.put_nowait(receipt)

    def inbound_sink(self, part: InboundPart) -> None:
        self.inbound.put_nowait(part)


@pytest.fixture
async def hooks() -> AsyncIterator[Hooks]:
    hooks = Hooks()
    app = web.Application()
    app.router.add_post("/v1/receipts/{provider}", hooks.receive)
    app.router.add_route("*", "/garbage", hooks.garbage)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    hooks.url = f"http://{host}:{port}"
    yield hooks
    await runner.cleanup()


@pytest.fixture
async def sim(hooks: Hooks) -> AsyncIterator[HttpSimulator]:
    async with HttpSimulator(HttpSimConfig(port=0, receipt_delay=0.01)) as simulator:
        yield simulator


@pytest.fixture
async def make(sim: HttpSimulator, hooks: Hooks) -> AsyncIterator[Factory]:
    """Start providers speaking to ``sim``, receipts to ``hooks``; close them at the end."""
    started: list[HttpProvider] = []

    async def start(dialect: str = "json", **changes: Any) -> HttpProvider:
        config = sim.config
        values: dict[str, Any] = {
            "name": "sim",
            "base_url": sim.base_url,
            "dialect": dialect,
            "account": config.account,
            "username": config.account,
            "password": config.auth_token,
            "token": config.api_key,
            "webhook_secret": config.webhook_secret,
            "callback_url": f"{hooks.url}/v1/receipts/sim",
            "close_timeout": 2.0,
        }
        provider = HttpProvider(
            HttpSettings(**(values | changes)), hooks.receipt_sink, hooks.inbound_sink
        )
        await provider.start()
        hooks.providers[provider.name] = provider
        started.append(provider)
        return provider

    yield start
    for provider in started:
        await provider.close()


async def next_item(queue: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(queue.get(), DEADLINE)


# -- submitting ------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["form", "json"])
async def test_submit_keeps_cyrillic_text_and_returns_one_id(
    make: Factory, sim: HttpSimulator, dialect: str
) -> None:
    provider = await make(dialect)
    result = await provider.submit(submission(7, CYRILLIC))
    assert result.message_id == 7 and len(result.part_ids) == 1 and result.part_ids[0]
    expected_to = NUMBER if dialect == "form" else NUMBER.removeprefix("+")
    assert sim.received[-1] == (dialect, expected_to, CYRILLIC)
    snapshot = provider.snapshot()
    assert snapshot.kind == "http" and snapshot.binds_total == 1 and snapshot.submitted == 1


@pytest.mark.parametrize(
    ("dialect", "fault", "expected"),
    [
        ("form", {"throttle_ratio": 1.0}, (ProviderTemporaryError, "http:20429")),
        ("json", {"throttle_ratio": 1.0}, (ProviderTemporaryError, "http:TOO_MANY_REQUESTS")),
        ("form", {"error_ratio": 1.0}, (ProviderTemporaryError, "http:20500")),
        ("json", {"error_ratio": 1.0}, (ProviderTemporaryError, "http:GENERAL_ERROR")),
        ("form", {"invalid_ratio": 1.0}, (ProviderPermanentError, "http:21211")),
        ("json", {"invalid_ratio": 1.0}, (ProviderPermanentError, "http:REJECTED_DESTINATION")),
    ],
)
async def test_each_refusal_maps_to_its_error_class(
    make: Factory,
    sim: HttpSimulator,
    dialect: str,
    fault: dict[str, float],
    expected: tuple[type[Exception], str],
) -> None:
    provider = await make(dialect)
    sim.update(retry_after=7, **fault)
    error_type, code = expected
    with pytest.raises(error_type) as info:
        await provider.submit(submission())
    assert info.value.code == code  # type: ignore[attr-defined]
    if fault.get("throttle_ratio"):
        assert info.value.retry_after == 7  # type: ignore[attr-defined]
        assert provider.snapshot().throttled == 1


@pytest.mark.parametrize("dialect", ["form", "json"])
async def test_invalid_number_prefix_is_permanent(make: Factory, dialect: str) -> None:
    provider = await make(dialect)
    with pytest.raises(ProviderPermanentError):
        await provider.submit(submission(destination="+99912345678"))


@pytest.mark.parametrize("dialect", ["form", "json"])
async def test_bad_credentials_are_temporary(make: Factory, dialect: str) -> None:
    provider = await make(dialect, password="wrong", token="wrong")
    with pytest.raises(ProviderTemporaryError) as info:
        await provider.submit(submission())
    assert info.value.code in ("http:20003", "http:UNAUTHORIZED")


async def test_network_errors_and_timeouts_are_temporary(make: Factory, sim: HttpSimulator) -> None:
    dead = await make("json", name="dead", base_url="http://127.0.0.1:9")
    with pytest.raises(ProviderTemporaryError) as info:
        await dead.submit(submission())
    assert info.value.code == "http_network"
    slow = await make("json", request_timeout=0.1)
    sim.update(latency=1.0)
    with pytest.raises(ProviderTemporaryError) as info:
        await slow.submit(submission())
    assert info.value.code == "http_timeout"


async def test_a_garbage_answer_is_temporary(make: Factory, hooks: Hooks) -> None:
    provider = await make("generic", base_url=hooks.url, generic=_garbage_dialect())
    with pytest.raises(ProviderTemporaryError) as info:
        await provider.submit(submission())
    assert info.value.code == "http_bad_answer"


def _garbage_dialect() -> Any:
    data = {
        "request": {"url": "{base_url}/garbage", "fields": {"to": "{to}"}},
        "response": {"id": "id"},
        "callback": {"receipt": {"id": "id", "status": "s", "statuses": {}}},
    }
    return build(HttpSettings, {"name": "g", "base_url": "http://x", "dialect": "generic",
                                "generic": data}, "").generic  # fmt: skip


async def test_concurrency_never_exceeds_the_window(make: Factory, sim: HttpSimulator) -> None:
    provider = await make("json", concurrency=5)
    sim.update(latency=0.02)
    tasks = [asyncio.create_task(provider.submit(submission(i))) for i in range(40)]
    await asyncio.sleep(0)  # let every task reach the window
    assert provider.capacity() == 0 and provider.in_flight == 40
    await asyncio.gather(*tasks)
    assert sim.stats.max_concurrent == 5
    assert provider.capacity() == 5 and provider.snapshot().submitted == 40


async def test_closed_provider_refuses_at_once(make: Factory) -> None:
    provider = await make("form")
    await provider.close()
    assert not provider.ready and provider.capacity() == 0
    with pytest.raises(ProviderTemporaryError) as info:
        await provider.submit(submission())
    assert info.value.code == "http_closing"


# -- receipts and inbound messages -----------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "outcome", "status", "error"),
    [
        ("form", "delivered", ReceiptStatus.DELIVERED, None),
        ("json", "delivered", ReceiptStatus.DELIVERED, None),
        ("form", "undeliverable", ReceiptStatus.UNDELIVERABLE, "30005"),
        ("json", "expired", ReceiptStatus.EXPIRED, "27"),
        ("form", "rejected", ReceiptStatus.REJECTED, "30007"),
    ],
)
async def test_receipts_by_webhook(
    make: Factory,
    sim: HttpSimulator,
    hooks: Hooks,
    dialect: str,
    outcome: str,
    status: ReceiptStatus,
    error: str | None,
) -> None:
    provider = await make(dialect)
    sim.update(**{name: float(name == outcome) for name in ("delivered", outcome)})
    result = await provider.submit(submission(text=CYRILLIC))
    receipt = await next_item(hooks.receipts)
    assert receipt.provider == "sim" and receipt.provider_message_id == result.part_ids[0]
    assert receipt.status is status and receipt.error_code == error
    assert hooks.refused == []


async def test_receipts_by_polling_reports(make: Factory, hooks: Hooks) -> None:
    provider = await make("json", callback_url="", poll_interval=0.02)
    ids = {(await provider.submit(submission(i))).part_ids[0] for i in range(3)}
    got = {(await next_item(hooks.receipts)).provider_message_id for _ in ids}
    assert got == ids and provider.stats.receipts_polled == 3


async def test_receipts_by_polling_each_id(make: Factory, sim: HttpSimulator, hooks: Hooks) -> None:
    provider = await make("form", callback_url="", poll_interval=0.02)
    sim.update(delivered=0.0, undeliverable=1.0)
    [provider_id] = (await provider.submit(submission())).part_ids
    receipt = await next_item(hooks.receipts)
    assert (receipt.provider_message_id, receipt.status) == (
        provider_id,
        ReceiptStatus.UNDELIVERABLE,
    )
    assert receipt.error_code == "30005" and receipt.done_at is not None
    assert provider.snapshot().binds[0]["awaiting_receipt"] == 0


@pytest.mark.parametrize("dialect", ["form", "json"])
async def test_inbound_callback_becomes_an_inbound_part(
    make: Factory, sim: HttpSimulator, hooks: Hooks, dialect: Literal["form", "json"]
) -> None:
    await make(dialect)
    url = f"{hooks.url}/v1/receipts/sim"
    assert await sim.inject_inbound(dialect, NUMBER, "+79001112233", CYRILLIC, url) == 204
    part = await next_item(hooks.inbound)
    assert part.provider == "sim" and part.text == CYRILLIC
    assert part.source.removeprefix("+") == NUMBER.removeprefix("+")
    assert part.destination == "+79001112233"


@pytest.mark.parametrize("dialect", ["form", "json"])
async def test_a_bad_signature_is_refused_with_401(
    make: Factory, sim: HttpSimulator, hooks: Hooks, dialect: Literal["form", "json"]
) -> None:
    provider = await make(dialect, webhook_secret="not-the-simulators", password="other")
    url = f"{hooks.url}/v1/receipts/sim"
    assert await sim.inject_inbound(dialect, NUMBER, "+79001112233", "hi", url) == 401
    with pytest.raises(CallbackRejected) as info:
        provider.callback({}, b'{"results": []}', url)
    assert info.value.status == 401 and hooks.refused == [401]


async def test_a_garbage_body_is_refused_with_400(make: Factory, sim: HttpSimulator) -> None:
    provider = await make("json")
    spec = JSON.callback.signature
    for body in (b"\xff\xfe not json", b'{"results": 5}', b'{"results": [{"x": 1}]}'):
        signed = {spec.header: signature(spec, sim.config.webhook_secret, body, "")}
        with pytest.raises(CallbackRejected) as info:
            provider.callback(signed, body, "http://gw/v1/receipts/sim")
        assert info.value.status == 400


# -- the generic dialect, from config --------------------------------------------------------

TEXT_API = """
name = "smsc"
base_url = "{base_url}"
dialect = "generic"
username = "{account}"
token = "{password}"

[generic.request]
method = "GET"
url = "{{base_url}}/sys/send.php"
body = "query"
fields = {{ phones = "{{to_digits}}", mes = "{{text}}", sender = "{{from}}" }}

[generic.response]
format = "text"
id = 'ID - (\\d+)'
errors = ['ERROR = (\\d+)']
temporary_errors = ["9"]

[generic.auth]
kind = "query"
param = "psw"
user_param = "login"

[generic.callback.receipt]
id = "id"
status = "status"
statuses = {{ "1" = "delivered", "20" = "undeliverable" }}
"""


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({}, None),
        ({"throttle_ratio": 1.0}, (ProviderTemporaryError, "http:9")),
        ({"invalid_ratio": 1.0}, (ProviderPermanentError, "http:7")),
        ({"error_ratio": 1.0}, (ProviderTemporaryError, "http_status:500")),
    ],
)
async def test_generic_text_api_from_toml(
    make: Factory,
    sim: HttpSimulator,
    fault: dict[str, float],
    expected: tuple[type[Exception], str] | None,
) -> None:
    config = sim.config
    text = TEXT_API.format(
        base_url=sim.base_url, account=config.account, password=config.auth_token
    )
    settings = build(HttpSettings, tomllib.loads(text), "providers[0]")
    provider = await make(
        **{f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    )
    sim.update(**fault)
    if expected is None:
        [provider_id] = (await provider.submit(submission(text=CYRILLIC))).part_ids
        assert provider_id.isdigit() and sim.received[-1] == ("text", "79211234567", CYRILLIC)
        return
    with pytest.raises(expected[0]) as info:
        await provider.submit(submission())
    assert info.value.code == expected[1]  # type: ignore[attr-defined]


async def test_generic_json_api_with_signed_webhooks(
    make: Factory, sim: HttpSimulator, hooks: Hooks
) -> None:
    """The built-in json dialect restated as a generic one: what a config file can say."""
    generic = {
        "request": {
            "url": "{base_url}/sms/2/text/advanced",
            "body": "json",
            "fields": {
                "messages.0.destinations.0.to": "{to_digits}",
                "messages.0.text": "{text}",
                "messages.0.from": "{from}",
                "messages.0.notifyUrl": "{callback_url}",
            },
        },
        "response": {"id": "messages.0.messageId", "errors": ["messages.0.status.name"],
                     "status": "messages.0.status.groupName", "refused": ["REJECTED"]},
        "auth": {"kind": "header", "header": "Authorization"},
        "callback": {
            "items": "results",
            "receipt": {"id": "messageId", "status": "status.groupName", "error": "error.id",
                        "statuses": {"DELIVERED": "delivered"}},
            "signature": {"scheme": "hmac-sha256", "header": "X-Signature"},
        },
    }  # fmt: skip
    data = {"name": "sim", "base_url": sim.base_url, "dialect": "generic", "generic": generic}
    settings = build(HttpSettings, data | {"token": "x", "webhook_secret": "y"}, "")
    provider = await make("generic", generic=settings.generic, token=f"App {sim.config.api_key}")
    [provider_id] = (await provider.submit(submission(text=CYRILLIC))).part_ids
    receipt = await next_item(hooks.receipts)
    assert receipt.provider_message_id == provider_id
    assert receipt.status is ReceiptStatus.DELIVERED
    with pytest.raises(ProviderPermanentError) as info:
        await provider.submit(submission(destination="+99900000000"))
    assert info.value.code == "http:REJECTED_DESTINATION"
