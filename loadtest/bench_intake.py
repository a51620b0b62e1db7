"""Benchmark: the gateway's CPU per accepted message at intake, nothing else.

    python -m loadtest.bench_intake --count 50000
    python -m loadtest.bench_intake --count 50000 --source /tmp/other_tree   # A/B

``smsgw run --role api`` runs in its own process against the environment's
``DATABASE_URL`` / ``REDIS_URL`` (else embedded servers); this process posts prepared
batches of demo messages (``loadtest.scenarios``: Russian numbers, Cyrillic text) with the
lean client and reads the gateway's CPU time from ``/proc/<pid>/stat`` before and after
the load (a warm-up of a few batches first). Nothing dispatches: the queue only grows.
``--source`` runs the gateway from another source tree, for before/after comparisons.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.adapters import client_store, pg
from gateway.embedded import ServerUrls, free_port
from gateway.settings import Settings, with_env
from loadtest import loadgen, scenarios
from loadtest.processes import Child, spawn, wait_for_http
from smsgw.demo import demo_config
from smsgw.runner import server_urls

WARMUP_BATCHES = 5


@dataclass(frozen=True)
class Result:
    accepted: int
    cpu_s: float
    wall_s: float
    warnings: int  # the gateway's WARNING/ERROR lines: left to the sweeper, refusals…

    def line(self) -> str:
        per = self.cpu_s / max(self.accepted, 1) * 1e6
        return (
            f"accepted {self.accepted:,} in {self.wall_s:.1f} s "
            f"({self.accepted / max(self.wall_s, 1e-9):,.0f}/s); gateway CPU {self.cpu_s:.2f} s "
            f"= {per:.1f} µs per accepted message; {self.warnings} warnings logged; "
            f"loadavg {_loadavg()}"
        )


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _start_gateway(urls: ServerUrls, work: Path, source: Path | None) -> tuple[Child, int]:
    port = free_port()
    config = work / "gateway.toml"
    config.write_text(demo_config(free_port(), port))
    env = {"DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url}
    argv = ["-m", "smsgw.cli", "--config", str(config), "run", "--role", "api"]
    if source is not None:  # -P: the working directory must not shadow the other tree
        env["PYTHONPATH"] = str(source)
        argv.insert(0, "-P")
    child = spawn("gateway", argv, work, env)
    wait_for_http(child, f"http://127.0.0.1:{port}/v1/health", timeout=60.0)
    return child, port


async def _post_all(port: int, key: str, count: int, batch: int, first: int, conc: int) -> int:
    http = loadgen.LeanClient("127.0.0.1", port, {"Authorization": f"Bearer {key}"}, conc)
    template = scenarios.item_template(scenarios.SHORT_TEXT, "921", "bulk")
    bodies = scenarios.bodies(count, batch, template, first)
    try:
        path = "/v1/messages" if batch == 1 else "/v1/messages/batch"
        tally = await loadgen.drive(http, path, bodies, loadgen.Pace(conc))
    finally:
        http.close()
    if tally.errors:
        raise RuntimeError(f"the gateway refused some: {tally.errors}")
    return tally.accepted


async def _measure(urls: ServerUrls, port: int, child: Child, args: argparse.Namespace) -> Result:
    async with pg.open_pool(urls.database_url, 2) as pool:
        made = await client_store.create(pool, f"bench-intake-{time.time_ns()}")
    key, batch, warmup = made.api_key, args.batch, WARMUP_BATCHES * args.batch
    await _post_all(port, key, warmup, batch, 0, args.concurrency)
    cpu, wall = child.cpu_seconds() or 0.0, time.monotonic()
    accepted = await _post_all(port, key, args.count, batch, warmup, args.concurrency)
    cpu, wall = (child.cpu_seconds() or 0.0) - cpu, time.monotonic() - wall
    return Result(accepted, cpu, wall, _warnings(child))


def _warnings(child: Child) -> int:
    """A fair comparison does the same work: nothing left to the sweeper, no refusals."""
    lines = child.log_path.read_text(errors="replace").splitlines()
    return sum(" WARNING " in line or " ERROR " in line for line in lines)


def run(args: argparse.Namespace) -> Result:
    work = Path(tempfile.mkdtemp(prefix="sgintake", dir="/tmp"))
    with server_urls(with_env(Settings(data_dir=work), os.environ)) as urls:
        child, port = _start_gateway(urls, work, args.source)
        try:
            return asyncio.run(_measure(urls, port, child, args))
        finally:
            child.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50_000, help="messages measured")
    parser.add_argument("--batch", type=int, default=1000, help="messages per request")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--source", type=Path, help="run the gateway from this source tree")
    print(run(parser.parse_args(argv)).line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
