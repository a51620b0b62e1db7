"""Benchmark: a campaign of N contacts (1,000,000 by default) through a real gateway API.

    python -m loadtest.bench_admin_campaign                      # 1,000,000 contacts
    python -m loadtest.bench_admin_campaign --contacts 50000     # a quick look

Servers: DATABASE_URL / REDIS_URL when set (their data is replaced: point them at a
scratch database and Redis db), else embedded ones in a scratch directory. The gateway
runs in this process with the ``api`` role only: messages are accepted, stored and queued
in Redis, and no dispatcher takes them (the providers are "down"), so what is measured
is the runner and the gateway's intake. The runner is a child process (``--runner``) so
that its peak RSS (the kernel's VmHWM) is its own. The contacts spread over Russia's 11
zones, no send window, the rate cap at 10,000/s (chunks of 1,000), one template with a
placeholder. Reported: contacts, messages accepted, wall time, enqueue rate, the runner's
peak RSS and CPU seconds. Stops after ``--max-seconds`` whatever happened.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import aiopg

from admin.adapters import audience_store, campaign_store, db, template_store
from admin.adapters.template_store import TemplateDraft
from admin.core import campaigns as core
from admin.core.audience import parse_query
from gateway.adapters import client_store, pg
from gateway.embedded import ServerUrls, free_port
from gateway.settings import HttpSettings, ProviderConfig, Settings, route_table
from loadtest.processes import Child, spawn
from providers.smpp.settings import SmppSettings
from smsgw.runner import serving, with_scratch_servers

ZONES = (
    "Europe/Kaliningrad", "Europe/Moscow", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Omsk",
    "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok", "Asia/Magadan",
    "Asia/Kamchatka",
)  # fmt: skip
TEXT = "{first_name|Клиент}, скидка 15% на всё до воскресенья"
ADMIN_TABLES = (
    "admin.contacts, admin.audiences, admin.templates, admin.campaigns, admin.contact_sends CASCADE"
)


def gateway_settings(data_dir: Path) -> Settings:
    """The API on a free port; one SMPP provider nobody dispatches to (a route to price)."""
    smpp = SmppSettings(
        name="down", host="127.0.0.1", port=free_port(), system_id="x", password="y"
    )
    provider = ProviderConfig("down", "smpp", smpp=smpp, price_per_part=Decimal("0.35"))
    return Settings(
        data_dir=data_dir,
        log_level="WARNING",
        http=HttpSettings(port=free_port()),
        providers=(provider,),
        routing=route_table({}, (provider,)),
    )


async def seed(pool: aiopg.Pool, contacts: int) -> int:
    """The contacts, an audience of all of them, a template and a campaign due now."""
    await pg.execute(pool, f"TRUNCATE {ADMIN_TABLES}")
    for start in range(1, contacts + 1, 100_000):
        await pg.execute(
            pool,
            "INSERT INTO admin.contacts (phone, first_name, timezone, consent, tags) "
            "SELECT '+79' || lpad(i::text, 9, '0'), 'Имя' || i, (%s::text[])[1 + i %% 11], "
            "true, '{bench}' FROM generate_series(%s, %s) i",
            (list(ZONES), start, min(contacts, start + 99_999)),
        )
    await pg.execute(pool, "VACUUM ANALYZE admin.contacts")
    query = parse_query({"rules": [{"field": "tags", "op": "any", "value": ["bench"]}]})
    audience = await audience_store.create_audience(pool, "bench", query, None)
    template = await template_store.create_template(pool, TemplateDraft("bench", TEXT, {}), None)
    spec = core.Spec(
        name="bench",
        audience_id=audience,
        sender="Shop",
        variants=(core.Variant("A", template, Decimal(100)),),
        schedule=core.Once(datetime.now(UTC)),
        rate_per_s=10_000,
    )
    return await campaign_store.create(pool, spec, None)


async def bench(urls: ServerUrls, contacts: int, max_seconds: float) -> dict[str, object]:
    data_dir = Path(tempfile.mkdtemp(prefix="sgb", dir="/tmp"))
    settings = gateway_settings(data_dir)
    async with pg.open_pool(urls.database_url, 4) as pool:
        await pg.migrate(pool)
        await db.migrate(pool)
        began = time.monotonic()
        campaign_id = await seed(pool, contacts)
        seeded = time.monotonic() - began
        await pg.execute(pool, "TRUNCATE messages, client_refs, api_keys, clients CASCADE")
        async with serving(settings, urls, roles=("api",)):
            key = (await client_store.create(pool, "bench", default_sender="Shop")).api_key
            url = f"http://127.0.0.1:{settings.http.port}"
            runner = spawn(
                "campaign-runner",
                ["-m", "loadtest.bench_admin_campaign", "--runner", url],
                data_dir,
                {"BENCH_DATABASE_URL": urls.database_url, "BENCH_REDIS_URL": urls.redis_url,
                 "BENCH_API_KEY": key},
            )  # fmt: skip
            try:
                result = await watch(pool, campaign_id, runner, max_seconds)
            finally:
                runner.stop()
    return {"contacts": contacts, "seed_s": round(seeded, 1), **result}


async def watch(
    pool: aiopg.Pool, campaign_id: int, runner: Child, max_seconds: float
) -> dict[str, object]:
    await campaign_store.schedule(pool, campaign_id, datetime.now(UTC))
    start = time.monotonic()
    first: float | None = None
    row = await campaign_store.get(pool, campaign_id)
    while row and row.state is not core.State.FINISHED and time.monotonic() - start < max_seconds:
        await asyncio.sleep(1.0)
        row = await campaign_store.get(pool, campaign_id)
        if first is None and row and row.sent:
            first = time.monotonic()  # the run's count query is behind us: sending began
        if row and int(time.monotonic() - start) % 30 == 0:
            print(f"  {row.sent} sent, runner RSS peak {runner.peak_rss_mb():.0f} MB", flush=True)
    assert row is not None
    wall = time.monotonic() - (first or start)
    return {
        "state": row.state.value,
        "accepted": row.sent,
        "rejected": row.rejected,
        "sending_s": round(wall, 1),
        "enqueue_per_s": round(row.sent / wall) if wall else 0,
        "runner_peak_rss_mb": round(runner.peak_rss_mb() or 0, 1),
        "runner_cpu_s": round(runner.cpu_seconds() or 0, 1),
    }


async def run_runner(gateway_url: str) -> None:
    """The child: one admin process with its campaign runner, until SIGTERM."""
    from admin.app import Admin
    from admin.services import campaign_runner
    from admin.settings import AdminSettings
    from gateway.settings import Secret

    logging.basicConfig(level=os.environ.get("BENCH_LOG", "INFO"), format="%(asctime)s %(message)s")
    key = Secret(os.environ["BENCH_API_KEY"])
    settings = AdminSettings(gateway_url=gateway_url, gateway_api_key=key, campaign_chunk=1000)
    database, redis = os.environ["BENCH_DATABASE_URL"], os.environ["BENCH_REDIS_URL"]
    async with Admin.open(settings, Settings(), database, redis) as admin:
        await campaign_runner.run(admin, campaign_runner.RunnerConfig(poll_s=0.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    parser.add_argument("--runner", metavar="GATEWAY_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.runner:
        import signal

        loop = asyncio.new_event_loop()
        task = loop.create_task(run_runner(args.runner))
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task)
        return

    async def go(urls: ServerUrls) -> None:
        found = await bench(urls, args.contacts, args.max_seconds)
        print(json.dumps(found, indent=2))

    with_scratch_servers(go)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
