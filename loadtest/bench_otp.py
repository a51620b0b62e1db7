"""Benchmark: OTP sends and checks over HTTP, and what a pumping flood costs.

    python -m loadtest.bench_otp                 # 500 codes, 16 concurrent requests
    python -m loadtest.bench_otp --count 2000 --concurrency 32

One process: the SMSC simulator (it keeps what it is sent, to read the codes back), the
gateway (all roles) and the HTTP client, with embedded (or the given DATABASE_URL /
REDIS_URL) servers. Three phases: ``send`` (distinct numbers, the pumping counters set
high so none refuses), ``check`` (each code read from the simulator, checked once), and
``flood`` (the same number range over and over: every request is refused by the counters,
in Redis, before the database is touched). Each reports requests/s and p50/p99 latency.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp

from gateway.adapters import client_store
from gateway.core.otp import OtpSettings, Window
from gateway.embedded import free_port, servers
from gateway.settings import HttpSettings, ProviderConfig, Secret, Settings, route_table
from loadtest.smpp_pdu import ShortMessage
from loadtest.smsc import SmscConfig, SmscSimulator
from providers.smpp.settings import SmppSettings
from smsgw.runner import serving

_CODE = re.compile(rb"code (\d+)")
_WIDE = (Window(1_000_000, 600),)


class _Recording(SmscSimulator):
    def __init__(self, config: SmscConfig, expected: int) -> None:
        super().__init__(config)
        self.codes: dict[str, str] = {}
        self.expected = expected
        self.all_in = asyncio.Event()

    def accept_submit(self, session: Any, sm: ShortMessage, sequence: int) -> bytes:
        found = _CODE.search(sm.short_message)
        if found:
            self.codes[sm.destination_addr.lstrip("+")] = found.group(1).decode()
            if len(self.codes) >= self.expected:
                self.all_in.set()
        return super().accept_submit(session, sm, sequence)


def _settings(smsc_port: int) -> Settings:
    smpp = SmppSettings(name="sim", host="127.0.0.1", port=smsc_port, system_id="smsgw",
                        password="secret", window=100)  # fmt: skip
    provider = ProviderConfig("sim", "smpp", smpp=smpp, price_per_part=Decimal("0.35"))
    otp = OtpSettings(
        text="Your code {code}",
        per_destination=_WIDE,
        per_prefix=(Window(50, 600),),  # the flood's range is refused after 50
        per_ip=_WIDE,
        default_country_daily=1_000_000,
    )
    return Settings(
        log_level="WARNING",
        http=HttpSettings(port=free_port()),
        providers=(provider,),
        routing=route_table({}, (provider,)),
        otp=otp,
        otp_secret=Secret("bench pepper"),
    )


async def _timed(
    calls: Sequence[Callable[[], Awaitable[int]]], concurrency: int
) -> tuple[float, list[float], dict[int, int]]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def one(call: Callable[[], Awaitable[int]]) -> None:
        async with gate:
            started = time.perf_counter()
            status = await call()
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(one(c) for c in calls))
    return time.perf_counter() - started, latencies, statuses


def _report(name: str, n: int, result: tuple[float, list[float], dict[int, int]]) -> None:
    wall, latencies, statuses = result
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{name:6} {n:6d} requests  {n / wall:7.0f}/s  p50 {cuts[49] * 1000:6.1f} ms  "
        f"p99 {cuts[98] * 1000:6.1f} ms  statuses {dict(sorted(statuses.items()))}"
    )


async def _post(http: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> int:
    async with http.post(path, json=body) as response:
        await response.read()
        return response.status


async def run(count: int, concurrency: int) -> None:
    given = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    tmp = tempfile.mkdtemp(prefix="sgb", dir="/tmp")
    with servers(Path(tmp), *given) as urls:
        smsc = _Recording(SmscConfig(port=0, system_id="smsgw", password="secret"), count)
        await smsc.start()
        try:
            settings = dataclasses.replace(_settings(smsc.port), data_dir=Path(tmp))
            async with serving(settings, urls) as gateway:
                created = await client_store.create(gateway.pool, f"bench{time.time_ns()}")
                await _phases(smsc, settings, created.api_key, count, concurrency)
        finally:
            await smsc.stop()
            shutil.rmtree(tmp, ignore_errors=True)


async def _phases(
    smsc: _Recording, settings: Settings, key: str, count: int, concurrency: int
) -> None:
    base = f"http://127.0.0.1:{settings.http.port}"
    headers = {"Authorization": f"Bearer {key}"}
    numbers = [f"+7921{n * 1000 % 10**7:07d}" for n in range(count)]  # a range each
    ids: dict[str, str] = {}
    async with aiohttp.ClientSession(base, headers=headers) as http:

        async def send(number: str) -> int:
            async with http.post("/v1/otp", json={"to": number, "from": "Bench"}) as response:
                ids[number] = (await response.json()).get("id", "")
                return response.status

        _report("send", count, await _timed([partial(send, n) for n in numbers], concurrency))
        await asyncio.wait_for(smsc.all_in.wait(), 120)
        checks = [
            partial(_post, http, f"/v1/otp/{ids[n]}/check", {"code": smsc.codes[n[1:]]})
            for n in numbers
        ]
        _report("check", count, await _timed(checks, concurrency))
        flood = [
            partial(_post, http, "/v1/otp", {"to": f"+7903555{i % 10000:04d}", "from": "Bench"})
            for i in range(count)
        ]
        _report("flood", count, await _timed(flood, concurrency))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(run(args.count, args.concurrency))


if __name__ == "__main__":
    main()
