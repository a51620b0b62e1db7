"""``smsgw demo``: real servers, the SMSC simulator, the gateway, a load, and a summary.

Each part runs as its own process, as in production: the embedded (or given)
PostgreSQL and Redis, ``python -m loadtest.smsc``, ``smsgw run``. This process is the
load generator and the observer: it posts the messages over HTTP and reads progress
and the final figures from PostgreSQL.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.adapters import client_store, pg
from gateway.embedded import ServerUrls, free_port
from gateway.settings import Settings
from loadtest import loadgen
from loadtest.processes import Child, spawn, wait_for_http, wait_for_port
from smsgw.runner import server_urls

SUMMARY_SQL = """
SELECT count(*),
       count(*) FILTER (WHERE submitted_at IS NOT NULL),
       count(*) FILTER (WHERE state >= 40),
       extract(epoch FROM max(submitted_at) - min(accepted_at)),
       extract(epoch FROM max(done_at) - min(accepted_at)),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM done_at - accepted_at)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM done_at - accepted_at)),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM submitted_at - accepted_at)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM submitted_at - accepted_at))
FROM messages WHERE client_id = %s
"""

STATES_SQL = """
SELECT CASE WHEN state >= 40 THEN 'final' WHEN state = 30 THEN 'submitted' ELSE 'waiting' END,
       count(*)
FROM messages WHERE client_id = %s GROUP BY 1
"""

FINAL_SQL = """
SELECT CASE state WHEN 41 THEN 'delivered' WHEN 42 THEN 'undeliverable' WHEN 43 THEN 'expired'
       WHEN 44 THEN 'rejected' WHEN 45 THEN 'failed' ELSE 'not final' END, count(*)
FROM messages WHERE client_id = %s GROUP BY 1 ORDER BY 2 DESC
"""


@dataclass
class Demo:
    urls: ServerUrls
    smsc: Child
    gateway: Child
    http_port: int


def run_demo(settings: Settings, count: int, concurrency: int, batch: int) -> int:
    log_dir = settings.data_dir / "demo-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"smsgw demo: {count:,} messages; logs in {log_dir}")
    with server_urls(settings) as urls:
        demo = _start(urls, settings.data_dir, log_dir)
        peaks: dict[str, float] = {}
        try:
            ok = asyncio.run(_drive(demo, count, concurrency, batch, peaks))
        finally:
            _record_peaks(demo, peaks)
            demo.gateway.stop()
            demo.smsc.stop()
    _print_rss(peaks)
    _print_next_steps()
    return 0 if ok else 1


def _start(urls: ServerUrls, data_dir: Path, log_dir: Path) -> Demo:
    smsc = spawn(
        "smsc",
        [
            "-m",
            "loadtest.smsc",
            "--port",
            "0",
            "--system-id",
            "smsgw",
            "--password",
            "secret",
            "--receipt-delay",
            "0.1",
        ],
        log_dir,
    )
    smsc_port = wait_for_port(smsc)
    http_port = free_port()
    config = data_dir / "demo.toml"
    config.write_text(demo_config(smsc_port, http_port))
    env = {"DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url}
    gateway = spawn("gateway", ["-m", "smsgw.cli", "--config", str(config), "run"], log_dir, env)
    wait_for_http(gateway, f"http://127.0.0.1:{http_port}/v1/ready")
    print(f"servers up: SMSC simulator :{smsc_port}, gateway http://127.0.0.1:{http_port}")
    return Demo(urls, smsc, gateway, http_port)


def demo_config(smsc_port: int, http_port: int, window: int = 500) -> str:
    return f"""
log_level = "WARNING"
[http]
port = {http_port}
[[providers]]
name = "sim"
type = "smpp"
price_per_part = "0.35"
host = "127.0.0.1"
port = {smsc_port}
system_id = "smsgw"
password = "secret"
window = {window}
"""


async def _drive(
    demo: Demo, count: int, concurrency: int, batch: int, peaks: dict[str, float]
) -> bool:
    async with pg.open_pool(demo.urls.database_url, 2) as pool:
        client = await client_store.create(pool, f"demo-{time.time_ns()}")
        base = f"http://127.0.0.1:{demo.http_port}"
        load = asyncio.create_task(loadgen.send(base, client.api_key, count, batch, concurrency))
        await _watch(pool, client.client.id, load, count, demo, peaks)
        result = load.result()
        return await _summary(pool, client.client.id, result)


async def _watch(
    pool: Any,
    client_id: int,
    load: asyncio.Task[Any],
    count: int,
    demo: Demo,
    peaks: dict[str, float],
) -> None:
    started, last_final, stalled_since = time.monotonic(), -1, time.monotonic()
    while True:
        await asyncio.sleep(1.0)
        _record_peaks(demo, peaks)
        counts = dict(await pg.fetch(pool, STATES_SQL, (client_id,)))
        total, final = sum(counts.values()), counts.get("final", 0)
        rate = final / max(time.monotonic() - started, 1e-9)
        line = (
            f"\raccepted {total:>9,}  submitted {counts.get('submitted', 0) + final:>9,}  "
            f"final {final:>9,}  ({rate:,.0f}/s end to end)"
        )
        print(line, end="", flush=True)
        if load.done() and (final >= total or load.exception()):
            break
        if final != last_final:
            last_final, stalled_since = final, time.monotonic()
        elif time.monotonic() - stalled_since > 60:
            print("\nno progress for 60 s; stopping the wait", file=sys.stderr)
            break
    print()


async def _summary(pool: Any, client_id: int, load: loadgen.LoadResult) -> bool:
    row = (await pg.fetch(pool, SUMMARY_SQL, (client_id,)))[0]
    total, submitted, final, sub_span, done_span, p50, p99, s50, s99 = row
    print("\n== summary ==")
    print(
        f"accepted     {load.accepted:>10,}   {load.accepted / load.seconds:>9,.0f}/s "
        f"(HTTP batches of {len(load.latencies_ms) and load.accepted // len(load.latencies_ms)})"
    )
    print(f"submitted    {submitted:>10,}   {submitted / float(sub_span or 1):>9,.0f}/s")
    print(f"receipts     {final:>10,}   {final / float(done_span or 1):>9,.0f}/s (final states)")
    print(f"accept → submitted  p50 {_ms(s50)}  p99 {_ms(s99)}")
    print(f"accept → final      p50 {_ms(p50)}  p99 {_ms(p99)}")
    for label, n in await pg.fetch(pool, FINAL_SQL, (client_id,)):
        print(f"  {label:<14}{n:>10,}")
    if load.errors or load.rejected:
        print(f"load errors: {load.errors}, rejected items: {load.rejected}")
    missing = total - final
    print(f"not final: {missing}" + ("" if missing else " (every accepted message has an outcome)"))
    return missing == 0 and not load.errors


def _ms(seconds: Any) -> str:
    return "—" if seconds is None else f"{float(seconds) * 1000:,.0f} ms"


def _record_peaks(demo: Demo, peaks: dict[str, float]) -> None:
    for child in (demo.gateway, demo.smsc):
        rss = child.peak_rss_mb()
        if rss is not None:
            peaks[child.name] = max(peaks.get(child.name, 0.0), rss)


def _print_rss(peaks: dict[str, float]) -> None:
    peaks["load generator"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("peak RSS: " + ", ".join(f"{name} {mb:.0f} MB" for name, mb in peaks.items()))


def _print_next_steps() -> None:
    print("""
To run the gateway yourself:
  for port in 2775 2776 2777; do    # the example's three providers
    .venv/bin/smsgw-smsc --port $port --system-id smsgw --password secret & done
  .venv/bin/smsgw --config examples/smsgw.toml run &
  .venv/bin/smsgw --config examples/smsgw.toml client-add myshop --sender MyShop
  curl -s -X POST http://127.0.0.1:8080/v1/messages -H "Authorization: Bearer <api_key>" \\
       -H 'Content-Type: application/json' -d '{"to": "8 921 123-45-67", "text": "Привет!"}'""")
