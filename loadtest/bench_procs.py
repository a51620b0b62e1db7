"""Benchmark: ``smsgw run --procs N`` against one simulator; throughput, or a TPS limit's error.

    python -m loadtest.bench_procs --procs 2 --count 30000            # submitted/s
    python -m loadtest.bench_procs --procs 3 --tps 500 --count 36000  # the limit, second by second

The simulator runs in this process and counts the submit_sm it accepts per wall-clock
second; the gateway is a real ``smsgw run --procs N`` child with embedded (or the given)
PostgreSQL and Redis. With ``--tps`` the report gives, over the steady seconds (the first
and last two left out), the mean rate, its error against the limit, and the worst second.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gateway.adapters import client_store, pg
from gateway.embedded import free_port
from loadtest import loadgen
from loadtest.processes import spawn, wait_for_http
from loadtest.smsc import SmscConfig, SmscSimulator
from smsgw.demo import demo_config
from smsgw.runner import with_scratch_servers


def _config(smsc_port: int, http_port: int, args: argparse.Namespace) -> str:
    extra = f"tps = {args.tps}\n" if args.tps else ""
    return demo_config(smsc_port, http_port, args.window) + extra + f"binds = {args.binds}\n"


async def _run(args: argparse.Namespace, database_url: str, redis_url: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="sgb", dir="/tmp"))
    async with SmscSimulator(SmscConfig(port=0, receipt_delay=0.05)) as sim:
        port = free_port()
        (work / "gw.toml").write_text(_config(sim.port, port, args))
        env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
        argv = ["-m", "smsgw.cli", "--config", str(work / "gw.toml"), "run"]
        gateway = spawn("gateway", [*argv, "--procs", str(args.procs)], work, env)
        try:
            await asyncio.to_thread(wait_for_http, gateway, f"http://127.0.0.1:{port}/v1/ready")
            parts = await _load(database_url, f"http://127.0.0.1:{port}", args.count)
            await _until(lambda: sim.stats.submits >= parts, 600)
        finally:
            await asyncio.to_thread(gateway.stop, 30.0)
        _report(args, sim.stats.accepted_per_second, parts)


async def _load(database_url: str, base: str, count: int) -> int:
    async with pg.open_pool(database_url, 2) as pool:
        await pg.migrate(pool)
        client = await client_store.create(pool, f"bench-{time.time_ns()}")
        result = await loadgen.send(base, client.api_key, count, batch=500, concurrency=4)
        print(f"accepted {result.accepted} in {result.seconds:.1f} s", flush=True)
        sql = "SELECT coalesce(sum(parts), 0) FROM messages WHERE client_id = %s"
        rows = await pg.fetch(pool, sql, (client.client.id,))
        return int(rows[0][0])


async def _until(done: Callable[[], bool], within: float) -> None:
    """Poll the simulator's counters (a benchmark samples them; nothing to await)."""
    for _ in range(int(within * 2)):
        if done():
            return
        await asyncio.sleep(0.5)


def _report(args: argparse.Namespace, per_second: dict[int, int], parts: int) -> None:
    seconds = sorted(per_second)
    steady = [per_second[s] for s in seconds[2:-2]] or list(per_second.values())
    span = seconds[-1] - seconds[0] + 1 if seconds else 0
    print(f"procs={args.procs} binds={args.binds} window={args.window} parts={parts}")
    print(f"submitted: {sum(per_second.values())} parts in {span} s of submitting")
    print(f"steady seconds: {len(steady)}, mean {statistics.fmean(steady):.1f}/s, "
          f"min {min(steady)}, max {max(steady)}")  # fmt: skip
    if args.tps:
        error = (statistics.fmean(steady) - args.tps) / args.tps * 100
        worst = max(abs(n - args.tps) for n in steady) / args.tps * 100
        print(f"TPS limit {args.tps}: mean error {error:+.2f} %, worst second {worst:.1f} % off")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--tps", type=float, default=0.0)
    parser.add_argument("--count", type=int, default=30_000)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--binds", type=int, default=1)
    args = parser.parse_args()
    with_scratch_servers(lambda urls: _run(args, urls.database_url, urls.redis_url))


if __name__ == "__main__":
    main()
