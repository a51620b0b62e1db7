"""Routing end to end: three SMSC simulators at three prices, a gateway routing by [[routes]].

The gateway's settings come from a TOML-like mapping (``gateway.settings.from_mapping``),
as a file would give them. "cheap" serves MegaFon numbers only, "mid" and "dear" all of
Russia, "dear" also North America (numeric senders only); nothing serves the rest of the
world. Each provider has its TPS contract, so a load above the cheapest's capacity shows
where the rest goes, and an outage shows where its traffic goes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import aiohttp
import aiopg
import pytest

from gateway.adapters import client_store, pg
from gateway.embedded import ServerUrls, free_port
from gateway.settings import from_mapping
from loadtest.smpp_pdu import ShortMessage
from loadtest.smsc import SmscConfig, SmscSimulator
from providers.encoding import analyse
from smsgw.runner import serving
from tests.e2e.conftest import Api, count, wait_for
from tests.e2e.test_durability import settle

PRICES = {"cheap": Decimal("0.25"), "mid": Decimal("0.40"), "dear": Decimal("0.60")}
US_PRICE = Decimal("3.00")
US_SENDER = "12025550100"
WINDOW = 20
LONG_TEXT = "Уважаемый клиент! Ваш заказ №123456 собран и передан в службу доставки. " * 2
BY_PROVIDER_SQL = "SELECT provider, count(*) FROM messages GROUP BY provider"


class RecordingSmsc(SmscSimulator):
    """The simulator, remembering the sender (source_addr) of every submit it reads."""

    def __init__(self, config: SmscConfig) -> None:
        super().__init__(config)
        self.senders: list[str] = []

    def accept_submit(self, session: Any, sm: ShortMessage, sequence: int) -> bytes:
        self.senders.append(sm.source_addr)
        return super().accept_submit(session, sm, sequence)


@pytest.fixture
async def sims() -> AsyncIterator[dict[str, RecordingSmsc]]:
    found = {name: RecordingSmsc(SmscConfig(port=0, receipt_delay=0.05)) for name in PRICES}
    for sim in found.values():
        await sim.start()
    yield found
    for sim in found.values():
        await sim.stop()


def config(
    sims: Mapping[str, SmscSimulator], http_port: int, tps: Mapping[str, float], **routing: Any
) -> dict[str, Any]:
    """The gateway's settings as a parsed TOML file with [[routes]] and [routing] gives them."""
    routes: list[dict[str, Any]] = [
        {"provider": "cheap", "operators": ["MegaFon"], "countries": ["RU"]},
        {"provider": "mid", "countries": ["RU"]},
        {"provider": "dear", "countries": ["RU"]},
    ]
    for route in routes:
        route["price_per_part"] = str(PRICES[route["provider"]])
    us = {"prefixes": ["+1"], "price_per_part": str(US_PRICE), "numeric_sender": US_SENDER}
    return {
        "data_dir": "/tmp/unused",
        "log_level": "WARNING",
        "http": {"port": http_port},
        "dispatch": {"sweep_interval_s": 0.2},
        "webhooks": {"retry_base_s": 0.2, "poll_interval_s": 0.1},
        "providers": [_provider(name, sim.port, tps.get(name)) for name, sim in sims.items()],
        "routes": [*routes, {"provider": "dear", **us}],
        "routing": routing,
    }


def _provider(name: str, port: int, tps: float | None) -> dict[str, Any]:
    provider: dict[str, Any] = {
        "name": name,
        "type": "smpp",
        "host": "127.0.0.1",
        "port": port,
        "system_id": "smsgw",
        "password": "secret",
        "window": WINDOW,
        "enquire_link_interval": 5.0,
        "response_timeout": 2.0,
        "reconnect_min": 0.1,
        "reconnect_max": 0.5,
        "quarantine": 0.5,
    }
    return {**provider, "tps": tps} if tps else provider


@asynccontextmanager
async def routed(
    server_urls: ServerUrls,
    pool: aiopg.Pool,
    sims: Mapping[str, SmscSimulator],
    tps: Mapping[str, float],
    **routing: Any,
) -> AsyncIterator[Api]:
    port = free_port()
    settings = from_mapping(config(sims, port, tps, **routing))
    async with serving(settings, server_urls) as gateway:
        created = await client_store.create(pool, "routing-test", default_sender="Shop")
        headers = {"Authorization": f"Bearer {created.api_key}"}
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", headers=headers) as http:
            yield Api(gateway, http, created, pool)


async def post(api: Api, numbers: list[str], priority: str = "transactional") -> set[str]:
    """POST the messages in batches; the ids accepted (all of them, or the test fails)."""
    ids: set[str] = set()
    for start in range(0, len(numbers), 100):
        chunk = [
            {"to": n, "text": f"Код {i}", "priority": priority}
            for i, n in enumerate(numbers[start : start + 100], start)
        ]
        async with api.http.post("/v1/messages/batch", json={"messages": chunk}) as response:
            body = await response.json()
            assert response.status == 202, body
        ids |= {a["id"] for a in body["accepted"]}
    assert len(ids) == len(numbers)
    return ids


def megafon(n: int) -> list[str]:
    return [f"+7926{i:07d}" for i in range(n)]


async def by_provider(pool: aiopg.Pool) -> dict[str, int]:
    return {p: n for p, n in await pg.fetch(pool, BY_PROVIDER_SQL)}


async def priced_by_route(pool: aiopg.Pool) -> bool:
    """Every message carries the price of the provider that took it, per part."""
    rows = await pg.fetch(pool, "SELECT provider, price, parts FROM messages")
    return all(price == PRICES[provider] * parts for provider, price, parts in rows)


# --- capacity: the cheapest first, the overflow in price order --------------------------
async def test_load_over_the_cheapest_capacity_spills_in_price_order(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, sims: dict[str, RecordingSmsc]
) -> None:
    tps = {"cheap": 100, "mid": 50, "dear": 25}  # a burst of 700 saturates all three
    async with routed(server_urls, pool, sims, tps) as api:
        ids = await post(api, megafon(700))
        await settle(pool, ids, 60)
    split = await by_provider(pool)
    assert split["cheap"] > split["mid"] > split["dear"] > 0, split
    assert split["cheap"] > sum(split.values()) * 0.4, split  # mostly the cheapest
    assert {name: sim.stats.resp_ok for name, sim in sims.items()} == split
    assert await priced_by_route(pool)
    assert await count(pool, "SELECT count(*) FROM messages WHERE state <> 41") == 0


@pytest.mark.parametrize(("wait_for_price", "spills"), [(["bulk"], False), ([], True)])
async def test_bulk_waits_for_the_cheapest_unless_the_policy_lets_it_spill(
    server_urls: ServerUrls,
    clean: None,
    pool: aiopg.Pool,
    sims: dict[str, RecordingSmsc],
    wait_for_price: list[str],
    spills: bool,
) -> None:
    tps = {"cheap": 100, "mid": 50, "dear": 25}
    async with routed(server_urls, pool, sims, tps, wait_for_price=wait_for_price) as api:
        ids = await post(api, megafon(300), priority="bulk")
        await settle(pool, ids, 60)
    split = await by_provider(pool)
    assert (split.keys() != {"cheap"}) is spills, split
    assert {name: sim.stats.resp_ok for name, sim in sims.items() if sim.stats.resp_ok} == split
    assert await priced_by_route(pool)


# --- an outage: the traffic moves, nothing is lost ---------------------------------------
async def test_a_provider_killed_mid_run_loses_nothing(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, sims: dict[str, RecordingSmsc]
) -> None:
    cheap = sims["cheap"]
    cheap.update(resp_delay=0.02)  # keep submissions in flight when the cut lands
    tps = {"cheap": 200, "mid": 100, "dear": 50}  # the cut lands early in a 5 s run
    async with routed(server_urls, pool, sims, tps) as api:
        load = asyncio.create_task(post(api, megafon(1200)))
        await wait_for(lambda: accepted(cheap, 150), within=30)
        cheap.update(system_id="nobody")  # binds refused from now on...
        cheap.drop_connections()  # ...and the live ones cut, mid-window
        taken_by_cheap, taken_by_others = cheap.stats.resp_ok, others(sims)
        ids = await load
        await wait_for(lambda: only_cheap_unfinished(pool), within=60)
        cheap.update(system_id="smsgw")  # back: the receipts it kept go out on the new bind
        await settle(pool, ids, 60)
    assert cheap.stats.resp_ok == taken_by_cheap  # nothing more went to it...
    assert others(sims) > taken_by_others  # ...the others took its traffic
    split = await by_provider(pool)
    assert sum(split.values()) == len(ids)
    assert others(sims) == len(ids) - split["cheap"]  # none twice on the others
    assert 0 <= taken_by_cheap - split["cheap"] <= WINDOW  # twice: at most the cut window
    assert await count(pool, "SELECT count(*) FROM messages WHERE state <> 41") == 0


async def accepted(sim: SmscSimulator, n: int) -> bool:
    return sim.stats.resp_ok >= n


def others(sims: Mapping[str, SmscSimulator]) -> int:
    return sims["mid"].stats.resp_ok + sims["dear"].stats.resp_ok


async def only_cheap_unfinished(pool: aiopg.Pool) -> bool:
    """Everything is delivered but what "cheap" took before the cut (its receipts wait)."""
    sql = "SELECT count(*) FROM messages WHERE state <> 41 AND provider IS DISTINCT FROM 'cheap'"
    return await count(pool, sql) == 0


# --- a message's route, sender and price ------------------------------------------------
async def test_price_is_the_chosen_routes_price_per_part_times_parts(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, sims: dict[str, RecordingSmsc]
) -> None:
    parts = analyse(LONG_TEXT).parts
    assert parts == 3
    async with routed(server_urls, pool, sims, {}) as api:
        _, long = await api.send(to="+79261234567", text=LONG_TEXT)
        _, short = await api.send(to="+79161234567", text="Привет")  # not MegaFon: "mid"
        long = await api.wait_status(long["id"], "delivered")
        short = await api.wait_status(short["id"], "delivered")
    assert (long["provider"], Decimal(long["price"])) == ("cheap", PRICES["cheap"] * 3)
    assert (short["provider"], Decimal(short["price"])) == ("mid", PRICES["mid"])
    assert sims["cheap"].stats.submits == parts


async def test_a_destination_no_route_serves_fails_with_no_route(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, sims: dict[str, RecordingSmsc]
) -> None:
    async with routed(server_urls, pool, sims, {}) as api:
        status, reply = await api.send(to="+4915112345678", text="Hallo")
        assert status == 202, reply
        found = await api.wait_status(reply["id"], "failed", "delivered")
    assert (found["status"], found["error_code"], found["price"]) == ("failed", "no_route", None)
    assert sum(sim.stats.submits for sim in sims.values()) == 0


async def test_a_numeric_sender_route_rewrites_an_alphanumeric_sender(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, sims: dict[str, RecordingSmsc]
) -> None:
    async with routed(server_urls, pool, sims, {}) as api:
        _, us = await api.send(to="+12025550123", text="Your code: 1234", **{"from": "Shop"})
        _, ru = await api.send(to="+79261234567", text="Ваш код: 1234", **{"from": "Shop"})
        us = await api.wait_status(us["id"], "delivered")
        await api.wait_status(ru["id"], "delivered")
    assert (us["provider"], Decimal(us["price"]), us["from"]) == ("dear", US_PRICE, "Shop")
    assert sims["dear"].senders == [US_SENDER]  # what the SMSC got on the numeric route
    assert sims["cheap"].senders == ["Shop"]  # other routes keep the sender
