"""``smsgw-bench SCENARIO``: the gateway end to end, measured, with everything it needs.

    smsgw-bench single --count 20000              # 64 clients, a signed callback per message
    smsgw-bench batch --count 1000000 --procs 2 --json /tmp/batch.json
    smsgw-bench otp-under-bulk --rate 5000        # the bulk offered open loop at 5,000 msg/s
    make bench SCENARIO=backlog COUNT=100000

What runs, each in its own process as in production: PostgreSQL and Redis (the
environment's ``DATABASE_URL`` / ``REDIS_URL``, else embedded ones in a scratch
directory), the SMSC simulator (``loadtest.smsc``, receipt 100 ms after each submit),
``smsgw run --procs N``, and this process: the load generator (``loadtest.loadgen``) and,
for ``single``, the webhook receiver (``loadtest.webhook_sink``). After the load, every
message's final state is awaited (bounded: ``--stall`` seconds without progress, or
``--timeout``), then ``loadtest.raw_ceiling`` drives the same simulator with a minimal
SMPP client. Everything started is stopped at the end, on error and on Ctrl-C / SIGTERM.

Rates come from the message rows: submitted/s and receipts/s over first accept → last
submit / last final state (for ``backlog``: from the moment the simulator came up). The
end-to-end rate counts delivered messages (``single``: delivered callbacks received by
the load generator, first request → last callback). Latencies from the rows are
``percentile_disc`` (nearest rank), as the report's own percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import aiopg

from gateway.adapters import client_store, pg
from gateway.adapters.redis_client import connect
from gateway.embedded import ServerUrls, free_port
from gateway.settings import Settings, with_env
from loadtest import loadgen, scenarios
from loadtest.medians import figures, medians, render_medians
from loadtest.processes import Child, spawn, wait_for_http, wait_for_port
from loadtest.progress import CounterProgress, Counts
from loadtest.redis_cluster import LocalCluster, local_cluster
from loadtest.report import (
    ProcessUsage,
    Rates,
    RawCeiling,
    Report,
    Spread,
    render,
    spread,
    to_json,
)
from loadtest.sampler import Sampler, listener_pid
from loadtest.scenarios import SCENARIOS, Scenario
from loadtest.smsc import run as run_loop
from loadtest.webhook_sink import WebhookSink
from smsgw.demo import FINAL_SQL, demo_config
from smsgw.runner import server_urls

PROGRESS_SQL = """
SELECT count(*), count(*) FILTER (WHERE state >= 30), count(*) FILTER (WHERE state >= 40),
       count(*) FILTER (WHERE priority <> 0 AND state >= 30)
FROM messages WHERE client_id = %s
"""

STATS_SQL = """
SELECT count(*), count(submitted_at), count(*) FILTER (WHERE state >= 40),
       count(*) FILTER (WHERE state = 41),
       extract(epoch FROM min(accepted_at)), extract(epoch FROM min(submitted_at)),
       extract(epoch FROM max(submitted_at)),
       extract(epoch FROM max(done_at)),
       percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP
           (ORDER BY extract(epoch FROM submitted_at - accepted_at)),
       extract(epoch FROM max(submitted_at - accepted_at)),
       percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP
           (ORDER BY extract(epoch FROM done_at - accepted_at)) FILTER (WHERE state = 41),
       extract(epoch FROM max(done_at - accepted_at) FILTER (WHERE state = 41))
FROM messages WHERE client_id = %s AND priority = ANY(%s)
"""

T = TypeVar("T")
SIMULATOR_COUNTERS = ("binds", "sessions_open", "submits", "resp_ok", "throttled",
                      "receipts_sent", "receipts_pending", "receipts_redelivered",
                      "receipt_drops", "deliver_sm_resp")  # fmt: skip
OTP_IN_FLIGHT = 64  # OTP requests in flight at most beside a bulk
GATEWAY_CHILDREN = ("gateway", "dispatch")  # ``dispatch`` with --split only
MAIN, OTP = [1, 2], [0]  # priorities: the main load, and the OTPs beside a bulk


@dataclass(frozen=True)
class Options:
    scenario: Scenario
    procs: int = 1
    binds: int = 1
    window: int = 500
    receipt_delay: float = 0.1
    json_path: Path | None = None
    timeout: float = 3600.0
    stall_s: float = 60.0
    raw_messages: int = 100_000  # 0: no raw ceiling
    redis_cluster: bool = False  # a local 3-primary Redis Cluster instead of REDIS_URL
    split: bool = False  # one API process; ``procs`` for dispatch, webhooks and the sweeper

    def params(self) -> dict[str, Any]:
        s = self.scenario
        return {"count": s.count, "procs": self.procs, "split": self.split, "batch": s.batch,
                "binds": self.binds, "window": self.window, "concurrency": s.concurrency,
                "rate": s.rate}  # fmt: skip


@dataclass(frozen=True)
class RowStats:
    total: int
    submitted: int
    final: int
    delivered: int
    first_accept: float
    first_submit: float
    last_submit: float
    last_done: float
    to_submitted: Spread
    to_delivered: Spread


@dataclass
class Run:
    """What one run gathers on its way to the report."""

    options: Options
    sink: WebhookSink
    main: loadgen.Tally | None = None
    otp: loadgen.Tally | None = None
    started_wall: float = 0.0
    providers_up: float = 0.0
    waited: str = ""
    counters: CounterProgress | None = None  # the gateway's counters: the progress line


class Fleet:
    """The processes this run started; ``stop_all`` stops them, and any they left."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: dict[str, Child] = {}
        self.sampler = Sampler()

    def start_smsc(self, port: int, options: Options) -> None:
        argv = ["-m", "loadtest.smsc", "--port", str(port), "--receipt-delay",
                str(options.receipt_delay), "--stats-interval", "1",
                *options.scenario.smsc_args]  # fmt: skip
        child = self.children["smsc"] = spawn("smsc", argv, self.log_dir)
        wait_for_port(child)
        self.sampler.track("smsc", child.pid)

    def start_gateway(self, config: Path, urls: ServerUrls, options: Options, port: int) -> None:
        """Up when ready; for ``backlog``, when the API answers (no provider is up yet)."""
        env = {"DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url}
        run = ["-m", "smsgw.cli", "--config", str(config), "run", "--procs"]
        if not options.split:
            argv = [*run, str(options.procs)]
        else:  # one API process; ``--procs`` for the rest: dispatch, callbacks, the sweeper
            argv = [*run, "1", "--role", "api"]
            rest = [arg for role in ("dispatch", "webhooks", "sweeper") for arg in ("--role", role)]
            self.children["dispatch"] = spawn(
                "dispatch", [*run, str(options.procs), *rest], self.log_dir, env
            )
        child = self.children["gateway"] = spawn("gateway", argv, self.log_dir, env)
        probe = "health" if options.scenario.providers_late else "ready"
        wait_for_http(child, f"http://127.0.0.1:{port}/v1/{probe}", timeout=120.0)
        self.sampler.track("gateway", child.pid)
        if options.split:
            self.sampler.track("dispatch", self.children["dispatch"].pid)

    def stop_gateway(self) -> None:
        for name in GATEWAY_CHILDREN:
            self.stop(name)

    def track_servers(self, urls: ServerUrls) -> None:
        """PostgreSQL (the postmaster and its backends) and Redis, when on loopback: on
        one machine their CPU is part of the cost of a message."""
        for name, url in (("postgresql", urls.database_url), ("redis", urls.redis_url)):
            pid = listener_pid(url)
            if pid is not None:
                self.sampler.track(name, pid, descendants=name == "postgresql")

    def simulator_stats(self) -> dict[str, int]:
        """The simulator's last counters (``--stats-interval`` prints them to its log)."""
        child = self.children.get("smsc")
        if child is None:
            return {}
        lines = child.log_path.read_text(errors="replace").splitlines()
        last = next((line for line in reversed(lines) if line.startswith("{")), "{}")
        found = json.loads(last)
        return {key: int(found[key]) for key in SIMULATOR_COUNTERS if key in found}

    def stop(self, name: str) -> None:
        if name in self.children:
            self.children[name].stop(30.0)

    def stop_all(self) -> None:
        self.sampler.discover()  # every descendant, to find any that outlives its parent
        for name in (*GATEWAY_CHILDREN, "smsc"):
            self.stop(name)
        for proc in self.sampler.leftovers({*GATEWAY_CHILDREN, "smsc"}):
            proc.kill()


def gateway_config(smsc_port: int, http_port: int, options: Options) -> str:
    """The demo's gateway (one SMPP provider) with the benchmark's binds, reconnects
    that notice a late simulator within a second, callbacks to loopback, and API limits
    far above the load (checked on every request all the same)."""
    return demo_config(smsc_port, http_port, options.window) + (
        f"binds = {options.binds}\nreconnect_min = 0.2\nreconnect_max = 1.0\n"
        '\n[webhooks]\nallow_networks = ["127.0.0.0/8"]\n'
        "\n[api_limits]\nkey_rps = 1000000.0\nkey_burst = 1000000.0\n"
        "ip_rps = 1000000.0\nip_burst = 1000000.0\n"
    )


# -- the run -----------------------------------------------------------------------------------


def run(options: Options) -> Report:
    work = Path(tempfile.mkdtemp(prefix="sgbench", dir="/tmp"))
    fleet = Fleet(work)
    print(f"smsgw-bench {options.scenario.name}: logs in {work}", file=sys.stderr)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, functools.partial(_interrupt, fleet))
    try:
        with (
            server_urls(with_env(Settings(data_dir=work), os.environ)) as urls,
            cluster_urls(options, urls, fleet) as (urls, cluster),
        ):
            try:
                report = run_loop(_bench(options, urls, fleet, work))
            except asyncio.CancelledError:  # a signal while the loop ran (``_on_signals``)
                raise KeyboardInterrupt from None
            return with_cluster_notes(report, cluster)
    finally:
        fleet.stop_all()


def _on_signals(fleet: Fleet) -> None:
    """Inside the loop a signal is the loop's to handle: raised from a plain handler, the
    KeyboardInterrupt landed in whatever callback ran (a protocol's ``data_received``),
    uvloop reported it as a transport error and the run went on. Here: the children
    first, then the run is cancelled."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()

    def stop() -> None:
        fleet.stop_all()
        if task is not None:
            task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)


async def _bench(options: Options, urls: ServerUrls, fleet: Fleet, work: Path) -> Report:
    _on_signals(fleet)
    scenario, smsc_port, http_port = options.scenario, free_port(), free_port()
    if not scenario.providers_late:
        await asyncio.to_thread(fleet.start_smsc, smsc_port, options)
    config = work / "gateway.toml"
    config.write_text(gateway_config(smsc_port, http_port, options))
    await asyncio.to_thread(fleet.start_gateway, config, urls, options, http_port)
    counters = CounterProgress(connect(urls.redis_url), Settings().queue.prefix)
    await counters.start()
    sink = WebhookSink(scenario.count if scenario.callbacks else 0)
    current = Run(options, sink, counters=counters)
    hook_port = await current.sink.start() if scenario.callbacks else 0
    fleet.sampler.track("load generator", os.getpid(), descendants=False)
    fleet.track_servers(urls)
    try:
        async with pg.open_pool(urls.database_url, 2) as pool:
            stats = await _measure(current, pool, fleet, http_port, hook_port, smsc_port)
            await asyncio.sleep(1.5)  # one more line of the simulator's counters
            simulator = fleet.simulator_stats()
            await asyncio.to_thread(fleet.stop_gateway)  # the simulator sends receipts
            raw = await raw_ceiling(options, smsc_port)  # to every bind of one system_id
            return replace(_report(current, stats, fleet.sampler, raw), simulator=simulator)
    finally:
        await current.sink.stop()
        await counters.close()


async def _measure(
    current: Run, pool: aiopg.Pool, fleet: Fleet, port: int, hook_port: int, smsc_port: int
) -> tuple[RowStats, RowStats | None, dict[str, int]]:
    hook = f"http://127.0.0.1:{hook_port}/hook" if hook_port else None
    made = await client_store.create(pool, f"bench-{time.time_ns()}", callback_url=hook)
    current.sink.secret = made.webhook_secret
    client_id = made.client.id
    fleet.sampler.mark()
    async with fleet.sampler.running():
        await _load_and_wait(current, pool, client_id, port, made.api_key, fleet, smsc_port)
    main = await row_stats(pool, client_id, MAIN)
    otp = await row_stats(pool, client_id, OTP) if current.otp is not None else None
    states = dict(await pg.fetch(pool, FINAL_SQL, (client_id,)))
    return main, otp, states


async def _load_and_wait(
    current: Run, pool: aiopg.Pool, client_id: int, port: int, key: str, fleet: Fleet,
    smsc_port: int,
) -> None:  # fmt: skip
    scenario, stop_otp = current.options.scenario, asyncio.Event()
    headers = {"Authorization": f"Bearer {key}"}
    limit = scenario.concurrency + (OTP_IN_FLIGHT if scenario.otp_rate else 0)
    http = loadgen.LeanClient("127.0.0.1", port, headers, limit)
    current.started_wall = time.time()
    main = asyncio.create_task(_drive_main(http, scenario))
    otp = asyncio.create_task(_drive_otp(http, scenario, stop_otp))
    try:
        await _watch(current, pool, client_id, main, otp, stop_otp, fleet, smsc_port)
    finally:
        stop_otp.set()
        current.main, current.otp = await _finish(main), await _finish(otp)
        http.close()


async def _finish(task: asyncio.Task[T]) -> T | None:
    """The load's tally; one still running (a timeout, an error) is cancelled: None."""
    if task.done():
        return task.result()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    return None


async def _drive_main(http: loadgen.LeanClient, scenario: Scenario) -> loadgen.Tally:
    rate = scenario.rate / scenario.batch if scenario.rate else None
    pace = loadgen.Pace(scenario.concurrency, rate)
    return await loadgen.drive(http, scenario.path, scenarios.main_bodies(scenario), pace)


async def _drive_otp(
    http: loadgen.LeanClient, scenario: Scenario, stop: asyncio.Event
) -> loadgen.Tally | None:
    if not scenario.otp_rate:
        return None
    pace = loadgen.Pace(OTP_IN_FLIGHT, scenario.otp_rate)
    bodies = scenarios.otp_bodies(scenario.count)
    return await loadgen.drive(http, "/v1/messages", bodies, pace, stop)


async def _watch(
    current: Run,
    pool: aiopg.Pool,
    client_id: int,
    main: asyncio.Task[loadgen.Tally],
    otp: asyncio.Task[loadgen.Tally | None],
    stop_otp: asyncio.Event,
    fleet: Fleet,
    smsc_port: int,
) -> None:
    """Until every accepted message is final (and called back), or no progress for
    ``stall_s``, or ``timeout``; starts a late simulator once the load is in."""
    options, started = current.options, time.monotonic()
    last, since = (-1, -1, -1, -1), time.monotonic()
    otp_stop = _OtpStop(pool, client_id, stop_otp)
    while True:
        await asyncio.sleep(1.0)  # polling the counters: progress has no event to await
        counts = await current.counters.counts() if current.counters else Counts()
        _print_progress(counts, current.sink, started)
        if main.done() and not current.providers_up and options.scenario.providers_late:
            current.providers_up = time.time()
            await asyncio.to_thread(fleet.start_smsc, smsc_port, options)
        if main.done():
            await otp_stop.check(counts, main.result().accepted)
        if main.done() and otp.done() and _all_in(counts, current.sink):
            counts = await progress(pool, client_id)  # the rows confirm what the counters say
            if _all_in(counts, current.sink):
                current.waited = "every message final"
                break
        mark = (counts.total, counts.submitted, counts.final, len(current.sink.seen))
        if mark != last or not main.done():  # a slow intake is no stall
            last, since = mark, time.monotonic()
        elif time.monotonic() - since > options.stall_s:
            current.waited = f"stopped waiting: no progress for {options.stall_s:g} s"
            break
        if time.monotonic() - started > options.timeout:
            current.waited = f"stopped waiting: --timeout {options.timeout:g} s"
            break
    print(file=sys.stderr)


@dataclass
class _OtpStop:
    """Stops the OTP load once the main load is all submitted. The counters cannot tell
    the main load's submits from the OTPs' (a few are always in flight): once they say
    it may be so, the rows decide, at most every 3 s."""

    pool: aiopg.Pool
    client_id: int
    stop: asyncio.Event
    asked: float = 0.0

    async def check(self, counts: Counts, main_accepted: int) -> None:
        if self.stop.is_set() or counts.submitted < main_accepted:
            return
        if time.monotonic() - self.asked >= 3.0:
            self.asked = time.monotonic()
            if (await progress(self.pool, self.client_id)).main_submitted >= main_accepted:
                self.stop.set()


def _all_in(counts: Counts, sink: WebhookSink) -> bool:
    final = counts.final >= counts.total
    return final and (not sink.expected or len(sink.seen) >= counts.total)


def _print_progress(counts: Counts, sink: WebhookSink, started: float) -> None:
    line = (
        f"\r{time.monotonic() - started:6.0f} s  accepted {counts.total:>9,}  "
        f"submitted {counts.submitted:>9,}  final {counts.final:>9,}"
    )
    if sink.expected:
        line += f"  callbacks {len(sink.seen):>9,}"
    print(line, end="", file=sys.stderr, flush=True)


async def progress(pool: aiopg.Pool, client_id: int) -> Counts:
    row = (await pg.fetch(pool, PROGRESS_SQL, (client_id,)))[0]
    return Counts(*(int(v) for v in row))


async def row_stats(pool: aiopg.Pool, client_id: int, priorities: list[int]) -> RowStats:
    row = (await pg.fetch(pool, STATS_SQL, (client_id, priorities)))[0]
    total, submitted, final, delivered = (int(v) for v in row[:4])
    first, first_sub, last_sub, last_done = (float(v or 0) for v in row[4:8])
    return RowStats(
        total, submitted, final, delivered, first, first_sub, last_sub, last_done,
        _db_spread(submitted, row[8], row[9]), _db_spread(delivered, row[10], row[11]),
    )  # fmt: skip


def _db_spread(n: int, quantiles: list[float] | None, worst: Any) -> Spread:
    if not n or quantiles is None:
        return Spread()
    p50, p95, p99 = (float(q) * 1000 for q in quantiles)
    return Spread(n, p50, p95, p99, float(worst) * 1000)


# -- the raw ceiling ---------------------------------------------------------------------------


async def raw_ceiling(options: Options, smsc_port: int) -> RawCeiling | None:
    if not options.raw_messages:
        return None
    argv = ["-m", "loadtest.raw_ceiling", "--port", str(smsc_port), "--messages",
            str(options.raw_messages), "--text", scenarios.sample_text(options.scenario),
            "--window", str(options.window), "--binds", str(options.binds)]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, stdout=asyncio.subprocess.PIPE
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 600.0)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0 or not out.strip():
        return None
    return RawCeiling(**json.loads(out.splitlines()[-1]))


# -- the report --------------------------------------------------------------------------------


def _report(
    current: Run,
    stats: tuple[RowStats, RowStats | None, dict[str, int]],
    sampler: Sampler,
    raw: RawCeiling | None,
) -> Report:
    main, otp, states = stats
    tally, usage = current.main or loadgen.Tally(), sampler.usage()
    accepted = tally.accepted + (current.otp.accepted if current.otp else 0)
    total = main.total + (otp.total if otp else 0)
    final = main.final + (otp.final if otp else 0)
    return Report(
        scenario=current.options.scenario.name,
        params=current.options.params(),
        offered=current.options.scenario.count + (current.otp.accepted if current.otp else 0),
        accepted=accepted,
        seconds=time.time() - current.started_wall,
        rates=_rates(current, main, tally),
        end_to_end=_e2e_words(current),
        latency_ms=_latencies(current, main, otp),
        errors=_errors(current, accepted),
        final_states=states,
        not_final=total - final,
        processes=usage,
        raw_ceiling=raw,
        notes=(*_notes(current, main), _own_cost(usage, accepted)),
    )


def _rates(current: Run, main: RowStats, tally: loadgen.Tally) -> Rates:
    # backlog: from the first submit, but never before the simulator was up (the rows'
    # submitted_at can precede it: see the note)
    start = max(main.first_submit, current.providers_up) or main.first_accept
    submitted = main.submitted / max(main.last_submit - start, 1e-9)
    receipts = main.final / max(main.last_done - start, 1e-9)
    delivered = main.delivered / max(main.last_done - start, 1e-9)
    sink = current.sink
    if sink.expected:
        delivered = sink.statuses.get("delivered", 0) / max(
            sink.last_at - current.started_wall, 1e-9
        )
    return Rates(tally.accepted / max(tally.seconds, 1e-9), submitted, receipts, delivered)


def _e2e_words(current: Run) -> str:
    if current.sink.expected:
        return "delivered callbacks received / (last callback − first request)"
    if current.providers_up:
        return "drain: delivered / (last final − max(first submit, simulator up))"
    return "delivered / (last final − first accept)"


def _latencies(current: Run, main: RowStats, otp: RowStats | None) -> dict[str, Spread]:
    tally = current.main or loadgen.Tally()
    found = {"accept (HTTP request)": spread(tally.latencies_ms)}
    if current.options.scenario.rate:  # open loop: without the wait for a free connection
        found["accept, answer after send"] = spread(tally.answer_ms)
    found |= {"accept → submitted": main.to_submitted, "accept → delivered": main.to_delivered}
    if current.sink.expected:
        found["accept → callback"] = spread(current.sink.latencies_ms)
    if otp is not None and current.otp is not None:
        found["OTP accept (HTTP request)"] = spread(current.otp.latencies_ms)
        found |= {"OTP accept → submitted": otp.to_submitted,
                  "OTP accept → delivered": otp.to_delivered}  # fmt: skip
    return found


def _errors(current: Run, accepted: int) -> dict[str, int]:
    errors = dict((current.main or loadgen.Tally()).errors)
    errors |= {f"OTP {k}": v for k, v in (current.otp.errors if current.otp else {}).items()}
    sink = current.sink
    if sink.bad_signatures:
        errors["callbacks with a bad signature"] = sink.bad_signatures
    if sink.bad_payloads:
        errors["callbacks that are no status"] = sink.bad_payloads
    if sink.expected and len(sink.seen) < accepted:
        errors["callbacks missing"] = accepted - len(sink.seen)
    return errors


def _own_cost(usage: tuple[ProcessUsage, ...], accepted: int) -> str:
    cpu = sum(p.cpu_s for p in usage if p.name == "load generator")
    return f"load generator: {cpu / max(accepted, 1) * 1e6:,.0f} µs CPU per accepted message"


def _notes(current: Run, main: RowStats) -> tuple[str, ...]:
    notes = [current.waited]
    if current.providers_up:
        wait = main.first_submit - current.providers_up
        notes.append(f"first submitted_at {wait:+.1f} s from the simulator's start")
    for name, tally in (("", current.main), ("OTP ", current.otp)):
        if tally is not None and tally.retries:
            notes.append(f"{name}refusals retried: {tally.retries}")
        if tally is not None and tally.late:
            notes.append(f"{name}requests started late (all slots busy): {tally.late}")
    if current.sink.repeats:
        notes.append(f"repeated callbacks: {current.sink.repeats}")
    return tuple(notes)


# -- --redis-cluster: the queue sharded over a local cluster ---------------------------------


@contextlib.contextmanager
def cluster_urls(
    options: Options, urls: ServerUrls, fleet: Fleet
) -> Iterator[tuple[ServerUrls, LocalCluster | None]]:
    """With ``--redis-cluster``: a local 3-primary cluster (``loadtest.redis_cluster``) in
    place of the Redis, its nodes' CPU counted like the servers'."""
    if not options.redis_cluster:
        yield urls, None
        return
    with local_cluster() as cluster:
        for port, pid in zip(cluster.ports, cluster.pids, strict=True):
            fleet.sampler.track(f"redis :{port}", pid, descendants=False)
        yield replace(urls, redis_url=cluster.url), cluster


def with_cluster_notes(report: Report, cluster: LocalCluster | None) -> Report:
    """Per node: its queue streams and the XADDs it served, the proof that the queue
    shards (the events stream's XADDs go to the one node holding ``{ev}``)."""
    if cluster is None:
        return report
    return replace(report, notes=(*report.notes, *(s.line() for s in cluster.node_stats())))


# -- the command line --------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsgw-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--count", type=int, help="messages (default: the scenario's)")
    parser.add_argument("--procs", type=int, default=1, help="gateway processes")
    parser.add_argument(
        "--split", action="store_true", help="one API process apart; --procs for the rest"
    )
    parser.add_argument("--concurrency", type=int, help="closed-loop clients (in flight)")
    parser.add_argument("--rate", type=float, help="open loop: messages/s offered")
    parser.add_argument("--binds", type=int, default=1, help="SMPP binds per process")
    parser.add_argument("--window", type=int, default=500, help="SMPP window per bind")
    parser.add_argument("--receipt-delay", type=float, default=0.1, help="seconds")
    parser.add_argument("--raw-messages", type=int, help="raw ceiling's messages; 0: none")
    parser.add_argument("--stall", type=float, default=60.0, help="give up after N s idle")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after N s")
    parser.add_argument("--json", type=Path, help="write the report here as JSON")
    parser.add_argument(
        "--redis-cluster", action="store_true", help="the queue on a local 3-primary cluster"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs; >1 prints the medians")
    return parser


def options_from(args: argparse.Namespace) -> Options:
    scenario = scenarios.with_overrides(
        SCENARIOS[args.scenario], args.count, args.concurrency, args.rate
    )
    raw = min(scenario.count, 200_000) if args.raw_messages is None else args.raw_messages
    return Options(scenario, args.procs, args.binds, args.window, args.receipt_delay,
                   args.json, args.timeout, args.stall, raw, args.redis_cluster,
                   args.split)  # fmt: skip


def _interrupt(fleet: Fleet, signum: int, frame: object) -> NoReturn:
    """Ctrl-C or SIGTERM: the children first (the event loop's own cleanup may wait on
    them, and a second signal must not find them orphaned), then unwind."""
    signal.signal(signum, signal.SIG_IGN)
    fleet.stop_all()
    raise KeyboardInterrupt


def write_json(report: Report, path: Path) -> None:
    path.write_text(json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options = options_from(args)
    reports = []
    try:
        for n in range(1, args.repeat + 1):
            path = options.json_path
            if path is not None and args.repeat > 1:
                path = path.with_name(f"{path.stem}-{n}{path.suffix}")
            reports.append(run(replace(options, json_path=path)))
            print(render(reports[-1]), flush=True)
            if path is not None:
                write_json(reports[-1], path)
    except KeyboardInterrupt:
        print("\ninterrupted: every process the run started is stopped", file=sys.stderr)
        return 130
    if args.repeat > 1:
        found = medians([figures(r) for r in reports])
        print(render_medians(options.scenario.name, found))
        if options.json_path is not None:
            summary = {name: {"median": m, "runs": v} for name, (m, v) in found.items()}
            options.json_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
