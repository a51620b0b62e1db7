"""Benchmark: other keys' latency while one key floods the API at 10× its limit.

    python -m loadtest.bench_flood                        # 4 keys × 40 req/s, limit 100/s
    python -m loadtest.bench_flood --rate 10 --key-rps 10  # a small load for a busy machine

The gateway is a real ``smsgw run`` child (one process) with a per-key limit of
``--key-rps`` requests/s; loopback is exempt from the per-IP limit, since every sender
here is on 127.0.0.1. Quiet phase: ``--keys`` keys each POST one message per request at
``--rate`` req/s (open loop: requests start on schedule, whatever the answers) for
``--seconds``. Flood phase: the same, while one more key offers ``--flood`` × its limit.
Phases alternate for ``--rounds``. The report gives the other keys' p50/p99 in both and
what the flood got; then, on a gateway with a limit of 1 req/s, the CPU a refused
request costs it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from argparse import SUPPRESS
from asyncio.subprocess import PIPE
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from gateway.adapters import client_store, pg
from gateway.embedded import free_port
from loadtest.processes import Child, spawn, wait_for_http
from loadtest.smsc import SmscConfig, SmscSimulator
from smsgw.demo import demo_config
from smsgw.runner import with_scratch_servers

MESSAGE = {"to": "+79211234567", "text": "flood bench", "from": "Bench"}


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.latencies_ms += other.latencies_ms
        self.statuses += other.statuses

    def add_json(self, data: dict[str, Any]) -> None:
        """What a ``--hose`` process printed."""
        self.statuses.update({int(k): v for k, v in data["statuses"].items()})
        self.latencies_ms += data["latencies_ms"]

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _one(http: aiohttp.ClientSession, url: str, key: str, tally: Tally) -> None:
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {key}"}
    async with http.post(url, json=MESSAGE, headers=headers) as response:
        await response.read()
        tally.statuses[response.status] += 1
    tally.latencies_ms.append((time.perf_counter() - started) * 1000)


async def _paced(
    http: aiohttp.ClientSession, url: str, key: str, rate: float, seconds: float, tally: Tally
) -> None:
    """Open loop: request i starts at i / rate, whether or not earlier ones answered."""
    loop = asyncio.get_running_loop()
    start, tasks = loop.time(), []
    for i in range(int(rate * seconds)):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing: the schedule is the point
        tasks.append(asyncio.create_task(_one(http, url, key, tally)))
    await asyncio.gather(*tasks, return_exceptions=True)


async def _phase(
    base: str, keys: list[str], flood_key: str | None, args: argparse.Namespace
) -> tuple[Tally, Tally]:
    """The flood comes from a process of its own (``--hose``): sent from this one, its
    work would delay this loop's reading of the other keys' answers and show as their
    latency."""
    others, flood = Tally(), Tally()
    url = f"{base}/v1/messages"
    hose = None if flood_key is None else await _start_hose(url, flood_key, args)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        await asyncio.gather(*(_paced(http, url, k, args.rate, args.seconds, others) for k in keys))
    if hose is not None:
        flood.add_json(json.loads((await hose.communicate())[0]))
    return others, flood


async def _start_hose(url: str, key: str, args: argparse.Namespace) -> asyncio.subprocess.Process:
    rate = str(args.key_rps * args.flood)
    argv = ["-m", "loadtest.bench_flood", "--hose", url, key, rate, str(args.seconds)]
    return await asyncio.create_subprocess_exec(
        sys.executable, *argv, "--flood-conns", str(args.flood_conns), stdout=PIPE
    )


async def _hose(url: str, key: str, rate: float, seconds: float, conns: int) -> None:
    """The flooding client: paced requests over ``conns`` kept-alive connections."""
    tally = Tally()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns)) as http:
        await _paced(http, url, key, rate, seconds, tally)
    print(json.dumps({"statuses": tally.statuses, "latencies_ms": tally.latencies_ms}))


def _config(smsc_port: int, http_port: int, args: argparse.Namespace) -> str:
    return demo_config(smsc_port, http_port) + (
        f"\n[api_limits]\nkey_rps = {args.key_rps}\nkey_burst = {args.key_rps}\n"
        'exempt = ["127.0.0.0/8"]\n'
    )


async def _keys(database_url: str, n: int) -> list[str]:
    async with pg.open_pool(database_url, 2) as pool:
        await pg.migrate(pool)
        made = [await client_store.create(pool, f"flood-{time.time_ns()}-{i}") for i in range(n)]
        return [m.api_key for m in made]


@asynccontextmanager
async def _gateway(
    args: argparse.Namespace, database_url: str, redis_url: str
) -> AsyncIterator[tuple[Child, str]]:
    """A ``smsgw run`` child with the benchmark's limits, and its base URL."""
    work = Path(tempfile.mkdtemp(prefix="sgf", dir="/tmp"))
    async with SmscSimulator(SmscConfig(port=0, receipt_delay=0.05)) as sim:
        port = free_port()
        (work / "gw.toml").write_text(_config(sim.port, port, args))
        env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
        argv = ["-m", "smsgw.cli", "--config", str(work / "gw.toml"), "run"]
        gateway = spawn("gateway", argv, work, env)
        try:
            base = f"http://127.0.0.1:{port}"
            await asyncio.to_thread(wait_for_http, gateway, f"{base}/v1/ready")
            yield gateway, base
        finally:
            await asyncio.to_thread(gateway.stop, 30.0)


async def _run(args: argparse.Namespace, database_url: str, redis_url: str) -> None:
    async with _gateway(args, database_url, redis_url) as (_, base):
        *keys, flood_key = await _keys(database_url, args.keys + 1)
        await _phase(base, keys, None, _warmup(args))
        quiet, loud, flood = Tally(), Tally(), Tally()
        for _ in range(args.rounds):  # alternating: the machine's drift hits both alike
            quiet.add((await _phase(base, keys, None, args))[0])
            others, flooded = await _phase(base, keys, flood_key, args)
            loud.add(others)
            flood.add(flooded)
    _report(args, quiet, loud, flood)
    await _refusal_cost(args, database_url, redis_url)


async def _refusal_cost(args: argparse.Namespace, database_url: str, redis_url: str) -> None:
    """The gateway's CPU per refused request: a key limited to 1 req/s flooded alone,
    against the same time idle (the other keys' latency is at the mercy of whatever
    else the machine runs; CPU time much less so)."""
    one = argparse.Namespace(**{**vars(args), "key_rps": 1.0})
    async with _gateway(one, database_url, redis_url) as (gateway, base):
        [key] = await _keys(database_url, 1)
        idle = gateway.cpu_seconds() or 0.0
        await asyncio.sleep(args.seconds)  # the idle baseline is the measurement
        before = gateway.cpu_seconds() or 0.0
        rate = args.key_rps * args.flood
        hose = await _start_hose(f"{base}/v1/messages", key, _with(args, rate))
        flood = Tally()
        flood.add_json(json.loads((await hose.communicate())[0]))
        busy = (gateway.cpu_seconds() or 0.0) - before
    cost = (busy - (before - idle)) / max(1, sum(flood.statuses.values())) * 1e6
    print(f"  refusal cost: {dict(flood.statuses)} at {rate:g} req/s took {busy:.2f} s of "
          f"gateway CPU ({before - idle:.2f} s idle): ~{cost:.0f} µs per request")  # fmt: skip


def _with(args: argparse.Namespace, rate: float) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "key_rps": rate, "flood": 1.0})


def _warmup(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "seconds": 2.0})


def _report(args: argparse.Namespace, quiet: Tally, loud: Tally, flood: Tally) -> None:
    print(f"{args.keys} keys × {args.rate:g} req/s, {args.rounds} × {args.seconds:g} s; key limit "
          f"{args.key_rps:g}/s; flood offers {args.key_rps * args.flood:g} req/s")  # fmt: skip
    for name, tally in (("without flood", quiet), ("with flood", loud)):
        print(f"  other keys {name}: p50 {tally.p(0.5):.1f} ms, p99 {tally.p(0.99):.1f} ms, "
              f"statuses {dict(tally.statuses)}")  # fmt: skip
    change = (loud.p(0.99) - quiet.p(0.99)) / quiet.p(0.99) * 100 if quiet.p(0.99) else 0.0
    print(f"  p99 change under flood: {change:+.1f} %")
    mean = statistics.fmean(flood.latencies_ms) if flood.latencies_ms else 0.0
    print(f"  flood key: statuses {dict(flood.statuses)}, mean {mean:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=4, help="well-behaved keys")
    parser.add_argument("--rate", type=float, default=40.0, help="req/s per well-behaved key")
    parser.add_argument("--key-rps", type=float, default=100.0, help="the per-key limit")
    parser.add_argument("--flood", type=float, default=10.0, help="the flood, × the limit")
    parser.add_argument("--seconds", type=float, default=4.0, help="per phase")
    parser.add_argument("--rounds", type=int, default=3, help="quiet/flood pairs, alternating")
    parser.add_argument("--flood-conns", type=int, default=32, help="the flood's connections")
    parser.add_argument("--hose", nargs=4, metavar=("URL", "KEY", "RATE", "S"), help=SUPPRESS)
    args = parser.parse_args()
    if args.hose:
        url, key, rate, seconds = args.hose
        asyncio.run(_hose(url, key, float(rate), float(seconds), args.flood_conns))
        return
    with_scratch_servers(lambda urls: _run(args, urls.database_url, urls.redis_url))


if __name__ == "__main__":
    main()
