"""The campaign runner on real servers: PostgreSQL, Redis, the gateway API and the SMSC
simulator over TCP. Every test checks the two promises: no eligible contact is skipped,
and none gets two messages (in the admin's record and in the gateway's)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import aiopg
import pytest

from admin.adapters import audience_store, campaign_store, template_store
from admin.adapters.template_store import TemplateDraft
from admin.app import Admin
from admin.core import campaigns as core
from admin.core.audience import parse_query
from admin.core.campaigns import Action, State
from admin.core.translit import transliterate
from admin.services import campaign_runner
from admin.services.campaign_runner import RunnerConfig
from gateway.adapters import client_store, pg
from gateway.client import GatewayClient
from gateway.embedded import ServerUrls
from gateway.settings import Secret
from loadtest.smsc import SmscSimulator
from providers.encoding import decode
from smsgw.runner import serving
from tests.admin.conftest import admin_test_settings
from tests.e2e.conftest import count, gateway_settings, smsc, wait_for  # noqa: F401
from tests.logscan import register_text

ZONES = (
    "Europe/Kaliningrad", "Europe/Moscow", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Omsk",
    "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok", "Asia/Magadan",
    "Asia/Kamchatka",
)  # fmt: skip
FAST = RunnerConfig(poll_s=0.1, lease_s=2.0, chunk_s=0.2, cooldown_s=0.5)
TEXT = "{first_name|Друг}, скидка 20% только сегодня"


@dataclass
class Rig:
    admin: Admin
    pool: aiopg.Pool
    server_urls: ServerUrls
    gateway_url: str
    api_key: str
    client_id: int
    runners: list[asyncio.Task[None]]
    smsc: SmscSimulator

    def start_runner(self, config: RunnerConfig = FAST) -> asyncio.Task[None]:
        task = asyncio.create_task(campaign_runner.run(self.admin, config))
        self.runners.append(task)
        return task

    async def stop_runners(self) -> None:
        for task in self.runners:
            task.cancel()
        await asyncio.gather(*self.runners, return_exceptions=True)
        self.runners.clear()


@pytest.fixture
async def rig(
    clean: None,
    admin_clean: None,
    admin_db: aiopg.Pool,
    server_urls: ServerUrls,
    smsc: SmscSimulator,  # noqa: F811
) -> AsyncIterator[Rig]:
    gw_settings = gateway_settings(smsc.port)
    async with serving(gw_settings, server_urls):
        created = await client_store.create(admin_db, "campaigns", default_sender="Shop")
        url = f"http://127.0.0.1:{gw_settings.http.port}"
        settings = admin_test_settings(gateway_url=url, gateway_api_key=Secret(created.api_key))
        async with Admin.open(
            settings, gw_settings, server_urls.database_url, server_urls.redis_url
        ) as admin:
            found = Rig(
                admin, admin_db, server_urls, url, created.api_key, created.client.id, [], smsc
            )
            try:
                yield found
            finally:
                await found.stop_runners()


async def _contacts(pool: aiopg.Pool, n: int, zones: Sequence[str] = ZONES) -> None:
    """``n`` contacts tagged promo, spread over ``zones``; every 7th unsubscribed, every
    13th without consent (both never get a message)."""
    await pg.execute(
        pool,
        "INSERT INTO admin.contacts (phone, first_name, timezone, subscribed, consent, tags) "
        "SELECT '+7900' || lpad(i::text, 7, '0'), CASE WHEN i %% 5 = 0 THEN NULL ELSE "
        "'Имя' || i END, (%s::text[])[1 + i %% %s], i %% 7 <> 0, i %% 13 <> 0, '{promo}' "
        "FROM generate_series(1, %s) i",
        (list(zones), len(zones), n),
    )


async def _campaign(
    pool: aiopg.Pool,
    *,
    rate: int = 1000,
    window: core.Window = core.ALWAYS,
    cap: core.FrequencyCap | None = None,
    split: tuple[int, ...] = (100,),
    link: bool = False,
) -> int:
    promo = {"match": "all", "rules": [{"field": "tags", "op": "any", "value": ["promo"]}]}
    name = f"promo-{datetime.now().timestamp()}"
    audience = await audience_store.create_audience(pool, name, parse_query(promo), None)
    variants = []
    for i, percent in enumerate(split):
        text = f"{TEXT} ({chr(65 + i)})" + (" https://shop.example/sale" if link else "")
        draft = TemplateDraft(f"t{i}-{audience}", text, {}, i == 1, link)
        variants.append(
            core.Variant(
                chr(65 + i),
                await template_store.create_template(pool, draft, None),
                Decimal(percent),
            )
        )
    spec = core.Spec(
        name="Весенняя распродажа",
        audience_id=audience,
        sender="Shop",
        variants=tuple(variants),
        schedule=core.Once(datetime.now(UTC)),
        window=window,
        rate_per_s=rate,
        cap=cap,
    )
    campaign_id = await campaign_store.create(pool, spec, None)
    await campaign_store.schedule(pool, campaign_id, datetime.now(UTC))
    return campaign_id


ELIGIBLE = (
    "SELECT count(*) FROM admin.contacts WHERE subscribed AND consent AND 'promo' = ANY(tags)"
)


async def _state(pool: aiopg.Pool, campaign_id: int) -> State:
    found = await campaign_store.get(pool, campaign_id)
    assert found is not None
    return found.state


async def _ends(pool: aiopg.Pool, campaign_id: int, within: float = 60.0) -> None:
    async def ended() -> bool:
        return await _state(pool, campaign_id) in core.TERMINAL

    await wait_for(ended, within)


async def _exactly_once(rig: Rig, campaign_id: int) -> int:
    """Each eligible contact has one message in the admin's record and in the gateway's."""
    pool = rig.pool
    sent = await count(pool, "SELECT count(*) FROM admin.campaign_messages WHERE campaign_id = %s",
                       campaign_id)  # fmt: skip
    distinct = await count(
        pool, "SELECT count(DISTINCT contact_id) FROM admin.campaign_messages "
        "WHERE campaign_id = %s", campaign_id,
    )  # fmt: skip
    at_gateway = await count(
        pool, "SELECT count(*) FROM messages WHERE client_id = %s", rig.client_id
    )
    phones = await count(
        pool, "SELECT count(DISTINCT destination) FROM messages WHERE client_id = %s",
        rig.client_id,
    )  # fmt: skip
    sends = await count(pool, "SELECT count(*) FROM admin.contact_sends WHERE campaign_id = %s",
                        campaign_id)  # fmt: skip
    assert sent == distinct == at_gateway == phones == sends
    return sent


async def test_a_campaign_across_eleven_zones_finishes(rig: Rig) -> None:
    register_text(TEXT)
    await _contacts(rig.pool, 330)
    campaign_id = await _campaign(rig.pool, split=(50, 50))
    rig.start_runner()
    rig.start_runner()  # a second process: the lease keeps them off each other's campaign
    await _ends(rig.pool, campaign_id)
    assert await _state(rig.pool, campaign_id) is State.FINISHED
    sent = await _exactly_once(rig, campaign_id)
    assert sent == await count(rig.pool, ELIGIBLE)
    row = await campaign_store.get(rig.pool, campaign_id)
    assert row is not None and (row.total, row.sent, row.rejected) == (sent, sent, 0)
    assert row.zones_done == set(ZONES)
    variants = await campaign_store.variant_counts(rig.pool, campaign_id)
    assert set(variants) == {"A", "B"} and all(sum(v.values()) > 80 for v in variants.values())
    excluded = await count(
        rig.pool, "SELECT count(*) FROM admin.campaign_messages m JOIN admin.contacts c "
        "ON c.id = m.contact_id WHERE NOT (c.subscribed AND c.consent)",
    )  # fmt: skip
    assert excluded == 0


async def test_texts_are_rendered_per_contact_with_short_links(rig: Rig) -> None:
    register_text(TEXT)
    await _contacts(rig.pool, 12, ["Europe/Moscow"])
    campaign_id = await _campaign(rig.pool, split=(50, 50), link=True)
    rig.start_runner()
    await _ends(rig.pool, campaign_id)
    sent = await _exactly_once(rig, campaign_id)
    await wait_for(lambda: _received(rig.smsc, sent), 20)
    rows = await pg.fetch(
        rig.pool, "SELECT c.phone, c.first_name, m.variant, l.code FROM admin.campaign_messages m "
        "JOIN admin.contacts c ON c.id = m.contact_id "
        "JOIN admin.links l ON l.message_id = m.message_id AND l.contact_id = c.id "
        "WHERE m.campaign_id = %s", (campaign_id,),
    )  # fmt: skip
    assert len(rows) == sent  # one short link per message, its message attached
    base = rig.admin.settings.public_url
    expected = {
        phone.lstrip("+"): _expected(name, variant.strip(), f"{base}/l/{code}")
        for phone, name, variant, code in rows
    }
    got = {sm.destination_addr.lstrip("+"): decode(sm.short_message, sm.data_coding)
           for sm in rig.smsc.last_submits}  # fmt: skip
    assert got == expected, (got, expected)
    assert len(got) == sent > 5


def _expected(name: str | None, variant: str, link: str) -> str:
    text = f"{name or 'Друг'}, скидка 20% только сегодня ({variant}) {link}"
    return transliterate(text) if variant == "B" else text


async def _received(smsc: SmscSimulator, n: int) -> bool:  # noqa: F811
    return len(smsc.last_submits) >= n


async def test_only_zones_inside_the_window_are_sent_to(rig: Rig) -> None:
    now = datetime.now(UTC)
    moscow = now.astimezone(core.zone("Europe/Moscow"))
    start = (moscow - timedelta(minutes=30)).time().replace(second=0, microsecond=0)
    end = (moscow + timedelta(minutes=90)).time().replace(second=0, microsecond=0)
    window = core.Window(start, end)
    expected = core.open_zones(window, now, ZONES, FAST.margin)
    assert "Europe/Moscow" in expected and expected != set(ZONES)
    await _contacts(rig.pool, 220)
    campaign_id = await _campaign(rig.pool, window=window)
    rig.start_runner()

    async def zones_done() -> bool:
        row = await campaign_store.get(rig.pool, campaign_id)
        return row is not None and expected <= row.zones_done

    await wait_for(zones_done, 30)
    zones = {
        r[0] for r in await pg.fetch(
            rig.pool, "SELECT DISTINCT c.timezone FROM admin.campaign_messages m "
            "JOIN admin.contacts c ON c.id = m.contact_id WHERE m.campaign_id = %s",
            (campaign_id,),
        )
    }  # fmt: skip
    assert zones == expected
    assert await _state(rig.pool, campaign_id) is State.RUNNING  # the others wait
    eligible_open = await count(rig.pool, ELIGIBLE + " AND timezone = ANY(%s)", list(expected))
    assert await _exactly_once(rig, campaign_id) == eligible_open


async def test_the_frequency_cap_holds_across_campaigns(rig: Rig) -> None:
    await _contacts(rig.pool, 60, ["Europe/Moscow"])
    await pg.execute(
        rig.pool, "INSERT INTO admin.contact_sends (contact_id, sent_at, campaign_id) "
        "SELECT id, now() - interval '1 hour', 0 FROM admin.contacts WHERE id %% 2 = 0",
    )  # fmt: skip
    cap = core.FrequencyCap(1, timedelta(days=1))
    campaign_id = await _campaign(rig.pool, cap=cap)
    rig.start_runner()
    await _ends(rig.pool, campaign_id)
    capped = await count(
        rig.pool, "SELECT count(*) FROM admin.campaign_messages WHERE contact_id %% 2 = 0"
    )
    assert capped == 0
    assert await _exactly_once(rig, campaign_id) == await count(
        rig.pool, ELIGIBLE + " AND id %% 2 = 1"
    )
    again = await _campaign(rig.pool, cap=cap)  # everyone is at the cap now
    await _ends(rig.pool, again)
    assert await count(rig.pool, "SELECT count(*) FROM admin.campaign_messages "
                       "WHERE campaign_id = %s", again) == 0  # fmt: skip


async def _sent(pool: aiopg.Pool, campaign_id: int) -> int:
    return await count(
        pool, "SELECT count(*) FROM admin.campaign_messages WHERE campaign_id = %s", campaign_id
    )


async def _settled(rig: Rig, campaign_id: int) -> int:
    """Wait until no runner holds the campaign; its count then."""

    async def released() -> bool:
        row = await campaign_store.get(rig.pool, campaign_id)
        return row is not None and row.lease_owner is None

    await wait_for(released, 10)
    return await _sent(rig.pool, campaign_id)


async def test_pause_and_resume(rig: Rig) -> None:
    await _contacts(rig.pool, 300, ZONES[:3])
    campaign_id = await _campaign(rig.pool, rate=60)
    rig.start_runner()
    await wait_for(lambda: _sent(rig.pool, campaign_id), 20)
    await campaign_store.change(rig.pool, campaign_id, Action.PAUSE)
    paused = await _settled(rig, campaign_id)
    # Absence has no event to await: give the runner five polls in which it could wrongly
    # claim the paused campaign again, then check that nothing more was sent.
    await asyncio.sleep(5 * FAST.poll_s)
    assert await _sent(rig.pool, campaign_id) == paused < await count(rig.pool, ELIGIBLE)
    await campaign_store.change(rig.pool, campaign_id, Action.RESUME)
    await _ends(rig.pool, campaign_id)
    assert await _exactly_once(rig, campaign_id) == await count(rig.pool, ELIGIBLE)


async def test_cancel_stops_within_a_chunk(rig: Rig) -> None:
    await _contacts(rig.pool, 300, ZONES[:3])
    campaign_id = await _campaign(rig.pool, rate=60)
    rig.start_runner()
    await wait_for(lambda: _sent(rig.pool, campaign_id), 20)
    await campaign_store.change(rig.pool, campaign_id, Action.CANCEL)
    stopped = await _settled(rig, campaign_id)
    assert stopped < await count(rig.pool, ELIGIBLE)
    assert await _state(rig.pool, campaign_id) is State.CANCELLED
    assert await _exactly_once(rig, campaign_id) == stopped
    with pytest.raises(campaign_store.IllegalChange):
        await campaign_store.change(rig.pool, campaign_id, Action.RESUME)


async def test_a_runner_cancelled_at_any_moment_resumes_without_gaps(rig: Rig) -> None:
    await _contacts(rig.pool, 300, ZONES[:4])
    campaign_id = await _campaign(rig.pool, rate=200)
    for delay in (0.15, 0.4, 0.25, 0.6, 0.33):  # cancelled mid-send, mid-record, mid-wait
        task = rig.start_runner()
        await asyncio.sleep(delay)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    rig.start_runner()
    await _ends(rig.pool, campaign_id)
    assert await _exactly_once(rig, campaign_id) == await count(rig.pool, ELIGIBLE)


RUNNER_PROCESS = """
import asyncio, sys
from admin.app import Admin
from admin.services import campaign_runner
from admin.settings import AdminSettings
from gateway.settings import Secret, Settings

async def main(db, redis, url, key):
    settings = AdminSettings(gateway_url=url, gateway_api_key=Secret(key))
    async with Admin.open(settings, Settings(), db, redis) as admin:
        await campaign_runner.run(admin, campaign_runner.RunnerConfig(
            poll_s=0.1, lease_s=2.0, chunk_s=0.2))

asyncio.run(main(*sys.argv[1:]))
"""


async def test_a_runner_killed_mid_campaign_is_taken_over(rig: Rig) -> None:
    await _contacts(rig.pool, 400, ZONES[:4])
    campaign_id = await _campaign(rig.pool, rate=100)
    urls = rig.server_urls
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RUNNER_PROCESS, urls.database_url, urls.redis_url,
        rig.gateway_url, rig.api_key, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )  # fmt: skip
    try:
        await wait_for(lambda: _sent_at_least(rig.pool, campaign_id, 50), 60)
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    killed_at = await _sent(rig.pool, campaign_id)
    assert killed_at < await count(rig.pool, ELIGIBLE)
    rig.start_runner()  # takes over once the dead runner's lease runs out
    await _ends(rig.pool, campaign_id)
    assert await _exactly_once(rig, campaign_id) == await count(rig.pool, ELIGIBLE)


async def _sent_at_least(pool: aiopg.Pool, campaign_id: int, n: int) -> bool:
    return await _sent(pool, campaign_id) >= n


async def test_a_recurring_campaign_rearms(rig: Rig) -> None:
    await _contacts(rig.pool, 20, ["Europe/Moscow"])
    campaign_id = await _campaign(rig.pool)
    daily = core.Recurring(time(3), "Asia/Kamchatka")
    await pg.execute(
        rig.pool, "UPDATE admin.campaigns SET schedule = %s WHERE id = %s",
        (json.dumps(core.schedule_json(daily)), campaign_id),
    )  # fmt: skip
    rig.start_runner()

    async def rearmed() -> Any:
        row = await campaign_store.get(rig.pool, campaign_id)
        return row if row and row.state is State.SCHEDULED and row.finished_at else None

    row = await wait_for(rearmed, 30)
    assert row.next_run_at == core.next_occurrence(daily, row.finished_at)
    assert row.run_id == 1 and await _exactly_once(rig, campaign_id) == row.sent


async def test_a_refused_request_pauses_the_campaign(rig: Rig) -> None:
    await _contacts(rig.pool, 20, ["Europe/Moscow"])
    campaign_id = await _campaign(rig.pool)
    rig.admin.gateway = GatewayClient(rig.admin.gateway._session, rig.gateway_url, "sk_revoked")
    rig.start_runner()

    async def paused() -> bool:
        return await _state(rig.pool, campaign_id) is State.PAUSED

    await wait_for(paused, 20)
    assert await _sent(rig.pool, campaign_id) == 0
