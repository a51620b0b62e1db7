"""Submissions per second of one HTTP provider against the HTTP simulator (latency 0).

The simulator runs in its own process (spawned here, or already listening at ``--port``),
so that the CPU time counted is this process's: the provider plus a thin load loop.
Receipts are not asked for (no callback URL): this measures the submit path.

    python -m providers.http._bench --count 20000 --concurrency 64
    python -m providers.http._bench --dialect form --port 8088
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from loadtest.http_sim import HttpSimConfig
from loadtest.processes import spawn, wait_for_port
from providers.base import Submission
from providers.http import HttpProvider, HttpSettings
from providers.http.settings import DialectName


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(port: int, dialect: DialectName, count: int, concurrency: int) -> dict[str, object]:
    sim = HttpSimConfig()
    settings = HttpSettings(
        "bench", f"http://127.0.0.1:{port}", dialect, account=sim.account, username=sim.account,
        password=sim.auth_token, token=sim.api_key, webhook_secret=sim.webhook_secret,
        concurrency=concurrency,
    )  # fmt: skip
    provider = HttpProvider(settings, lambda receipt: None)
    await provider.start()
    ids = iter(range(count))

    async def worker() -> None:
        for message_id in ids:
            await provider.submit(Submission(message_id, "+79211234567", "Acme", "Привет, мир"))

    cpu, wall = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    await provider.close()
    return {
        "dialect": dialect,
        "messages": count,
        "concurrency": concurrency,
        "submit_per_s": round(count / wall),
        "cpu_us_per_message": round(cpu / count * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, help="a simulator already listening here")
    parser.add_argument("--dialect", choices=["form", "json", "all"], default="all")
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    child = None
    port = args.port
    if port is None:
        argv = ["-m", "loadtest.http_sim", "--port", "0", "--receipt-delay", "0.05"]
        child = spawn("http_sim", argv, Path(tempfile.mkdtemp(prefix="httpbench")))
        port = wait_for_port(child)
    try:
        for dialect in ("form", "json") if args.dialect == "all" else (args.dialect,):
            result = uvloop.run(run(port, dialect, args.count, args.concurrency))
            print(json.dumps(result), flush=True)
    finally:
        if child is not None:
            print(f"simulator CPU: {child.cpu_seconds()} s", file=sys.stderr)
            child.stop()


if __name__ == "__main__":
    main()
