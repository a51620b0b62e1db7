"""``smsgw retention --now`` and ``smsgw erase PHONE``: one-shot tasks on their own pools."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from gateway.adapters import pg, redis_client
from gateway.core.numbers import InvalidNumber, to_e164
from gateway.services import erasure
from gateway.services.retention import Retention
from gateway.settings import Settings
from smsgw.runner import server_urls

SettingsOf = Callable[[argparse.Namespace], Settings]


def register(sub: Any, settings_of: SettingsOf) -> None:
    retention = sub.add_parser("retention", help="partitions ahead, aggregates, retention")
    retention.add_argument("--now", action="store_true", help="run it once now")
    retention.set_defaults(func=lambda args: cmd_retention(args, settings_of(args)))
    erase = sub.add_parser("erase", help="erase one person's number and texts everywhere")
    erase.add_argument("phone", help="the number (E.164, or national in default_region)")
    erase.add_argument("--actor", default="cli", help="who asked for it (audit)")
    erase.add_argument("--reason", help="why (audit; the number is masked in it)")
    erase.set_defaults(func=lambda args: cmd_erase(args, settings_of(args)))


def _quiet_logging() -> None:
    logging.basicConfig(level="WARNING", stream=sys.stderr)


def cmd_retention(args: argparse.Namespace, settings: Settings) -> int:
    if not args.now:
        print("retention runs in the gateway's sweeper role; --now runs it once here")
        return 2
    _quiet_logging()
    report = asyncio.run(run_retention(settings))
    print(json.dumps(asdict(report), indent=2))
    return 0


def cmd_erase(args: argparse.Namespace, settings: Settings) -> int:
    try:
        number = to_e164(args.phone, settings.default_region)
    except InvalidNumber as exc:
        print(f"phone: {exc}", file=sys.stderr)
        return 2
    _quiet_logging()
    done = asyncio.run(erase(settings, number, args.actor, args.reason))
    print(json.dumps(asdict(done), indent=2))
    return 0


async def run_retention(settings: Settings) -> Any:
    with server_urls(settings, stop_adopted=False) as urls:
        async with pg.open_pool(urls.database_url, 2) as pool:
            await pg.migrate(pool)
            return await Retention(settings.retention, pool).run_once(actor="cli")


async def erase(settings: Settings, number: str, actor: str, reason: str | None) -> erasure.Erasure:
    with server_urls(settings, stop_adopted=False) as urls:
        async with pg.open_pool(urls.database_url, 2) as pool:
            await pg.migrate(pool)
            redis = redis_client.connect(urls.redis_url)
            try:
                return await erasure.erase(pool, redis, number, actor, reason)
            finally:
                await redis.aclose()
