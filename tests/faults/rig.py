"""The fault rig: real servers, real processes, a real load, and the accounting afterwards.

Theory of operation
-------------------
``Servers`` (one per test module) are an embedded PostgreSQL and Redis under their own
``/tmp`` dir, never the machine's, each reached by the gateway through a fault proxy
process (``loadtest/faultproxy.py``): a test can restart, kill or FLUSHALL them, or cut
and blackhole the network in between. The test itself talks to them directly.

A ``Run`` (one per scenario) adds two SMSC simulators on real TCP ("a", the cheaper
route, and "b"), the gateway as ``smsgw run --procs 2`` (the supervisor restarts a child
that dies), and a new API client. ``OpenLoad`` posts batches at a fixed rate whatever the
gateway answers (open loop: a fault does not slow the offered load) and keeps the ids of
every 2xx. ``Sampler`` records, twice a second, the submits the simulators accepted, so
that the time to recover is read off afterwards. ``account`` then waits until every
accepted message is final or the deadline passes, and builds the ``Row`` of the table:
accepted, final, lost (accepted but missing or not final), duplicated (parts the
simulators accepted beyond each message's parts) against its bound (DESIGN.md invariant 3:
the in-flight window of each process crashed or each link dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiopg
import psutil
import psycopg2

from gateway.adapters import client_store, pg
from gateway.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from loadtest.loadgen import messages
from loadtest.processes import Child, spawn, wait_for_http
from loadtest.smsc import SmscConfig, SmscSimulator

WINDOW = 50  # per bind; one bind per provider per process
PROCS = 2
PROVIDERS = ("a", "b")
ENQUIRE_LINK_S = 2.0
RESPONSE_TIMEOUT_S = 1.0
STALL_S = 60.0  # no message became final for this long: the rest never will


# -- servers and proxies ------------------------------------------------------------------------


class ProxyProcess:
    """``python -m loadtest.faultproxy`` driven over its stdin."""

    def __init__(self, upstream_port: int) -> None:
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "loadtest.faultproxy",
                "--upstream",
                f"127.0.0.1:{upstream_port}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin, self._stdout = self._proc.stdin, self._proc.stdout
        self.port = int(self._stdout.readline().rsplit(":", 1)[1])

    def command(self, line: str) -> str:
        self._stdin.write(line + "\n")
        self._stdin.flush()
        answer = self._stdout.readline().strip()
        assert answer.startswith("ok"), answer
        return answer

    def close(self) -> None:
        self._stdin.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)
        self._stdout.close()


@dataclass
class Servers:
    data_dir: Path
    postgres: EmbeddedPostgres
    redis: EmbeddedRedis
    pg_proxy: ProxyProcess
    redis_proxy: ProxyProcess
    database_url: str  # direct, for the test
    redis_url: str

    def gateway_env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{self.pg_proxy.port}/smsgw",
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_proxy.port}/0",
        }


@contextlib.contextmanager
def servers() -> Iterator[Servers]:
    data_dir = Path(tempfile.mkdtemp(prefix="sgf", dir="/tmp"))
    postgres, redis = EmbeddedPostgres(data_dir / "pg"), EmbeddedRedis(data_dir / "redis")
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        stack.callback(postgres.stop)
        database_url = postgres.start()
        stack.callback(redis.stop)
        redis_url = redis.start()
        pg_proxy = ProxyProcess(_port(database_url))
        stack.callback(pg_proxy.close)
        redis_proxy = ProxyProcess(_port(redis_url))
        stack.callback(redis_proxy.close)
        yield Servers(data_dir, postgres, redis, pg_proxy, redis_proxy, database_url, redis_url)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


async def query(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """One statement on a fresh connection: the test's view survives a PostgreSQL restart."""
    async with aiopg.connect(database_url, timeout=10) as conn, conn.cursor() as cur:
        await cur.execute(sql, params or None)
        return list(await cur.fetchall()) if cur.description else []


# -- the gateway --------------------------------------------------------------------------------


def gateway_config(http_port: int, smsc_ports: dict[str, int]) -> str:
    providers = "".join(
        f"""
[[providers]]
name = "{name}"
type = "smpp"
host = "127.0.0.1"
port = {port}
system_id = "smsgw"
password = "secret"
window = {WINDOW}
enquire_link_interval = {ENQUIRE_LINK_S}
response_timeout = {RESPONSE_TIMEOUT_S}
reconnect_min = 0.1
reconnect_max = 1.0
quarantine = 3.0
"""
        for name, port in smsc_ports.items()
    )
    routes = "".join(
        f'\n[[routes]]\nprovider = "{name}"\nprefixes = ["+7"]\nprice_per_part = "0.{20 + i}"\n'
        for i, name in enumerate(smsc_ports)
    )
    return f"""
log_level = "WARNING"
[http]
port = {http_port}
[dispatch]
lease_s = 10.0
sweep_interval_s = 0.5
enqueue_grace_s = 2.0
receipt_timeout_s = 30.0
[routing]
wait_for_price = []
{providers}{routes}"""


def gateway_processes(supervisor: Child) -> list[psutil.Process]:
    """The supervisor's live ``smsgw run`` children."""
    try:
        children = psutil.Process(supervisor.pid).children()
    except psutil.NoSuchProcess:
        return []
    return [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def cpu_seconds(supervisor: Child) -> float:
    total = 0.0
    for proc in gateway_processes(supervisor):
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


# -- the load -----------------------------------------------------------------------------------


@dataclass
class OpenLoad:
    """Batches at ``rate`` messages/s until ``total`` are accepted; 2xx ids are kept."""

    base_url: str
    api_key: str
    total: int
    rate: float
    batch: int = 100
    accepted: set[int] = field(default_factory=set)
    refused: dict[str, int] = field(default_factory=dict)
    attempted: int = 0
    finished_at: float = 0.0
    max_in_flight: int = 64
    _waiting: list[tuple[int, asyncio.Event]] = field(default_factory=list)

    async def reached(self, count: int) -> None:
        """Until ``count`` messages are accepted (or the load has ended)."""
        if len(self.accepted) < count and not self.finished_at:
            event = asyncio.Event()
            self._waiting.append((count, event))
            await event.wait()

    def _progress(self) -> None:
        done = self.finished_at > 0
        for count, event in self._waiting:
            if done or len(self.accepted) >= count:
                event.set()

    async def run(self) -> None:
        source = messages(10 * self.total, seed=time.time_ns())
        loop, gate = asyncio.get_running_loop(), asyncio.Semaphore(self.max_in_flight)
        headers = {"Authorization": f"Bearer {self.api_key}"}
        timeout = aiohttp.ClientTimeout(total=30)
        async with (
            aiohttp.ClientSession(self.base_url, headers=headers, timeout=timeout) as http,
            asyncio.TaskGroup() as group,
        ):
            due = loop.time()
            while len(self.accepted) < self.total and self.attempted < 3 * self.total:
                await asyncio.sleep(max(0.0, due - loop.time()))
                due += self.batch / self.rate
                chunk = [next(source) for _ in range(self.batch)]
                self.attempted += len(chunk)
                await gate.acquire()
                group.create_task(self._post(http, chunk, gate))
        self.finished_at = time.time()
        self._progress()

    async def _post(
        self, http: aiohttp.ClientSession, chunk: list[dict[str, Any]], gate: asyncio.Semaphore
    ) -> None:
        try:
            async with http.post("/v1/messages/batch", json={"messages": chunk}) as response:
                if response.status == 202:
                    body = await response.json()
                    self.accepted.update(int(a["id"]) for a in body["accepted"])
                    self._progress()
                else:
                    self._refuse(f"HTTP {response.status}", len(chunk))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._refuse(type(exc).__name__, len(chunk))  # not accepted: nothing promised
        finally:
            gate.release()

    def _refuse(self, why: str, n: int) -> None:
        self.refused[why] = self.refused.get(why, 0) + n


# -- a scenario's run ---------------------------------------------------------------------------


@dataclass
class Fault:
    """When the fault was injected and ended (wall clock), and how many times it struck."""

    started: float = 0.0
    ended: float = 0.0
    events: int = 0
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    servers: Servers
    sims: dict[str, SmscSimulator]
    gateway: Child
    http_port: int
    api_key: str
    client_id: int
    fault: Fault = field(default_factory=Fault)

    def accepted_submits(self) -> int:
        return sum(sim.stats.resp_ok for sim in self.sims.values())

    def per_second(self) -> dict[int, int]:
        merged: dict[int, int] = {}
        for sim in self.sims.values():
            for second, n in sim.stats.accepted_per_second.items():
                merged[second] = merged.get(second, 0) + n
        return merged


@contextlib.asynccontextmanager
async def run(servers: Servers, work: Path, **smsc: Any) -> AsyncIterator[Run]:
    config = SmscConfig(port=0, system_id="smsgw", password="secret", receipt_delay=0.2, **smsc)
    async with contextlib.AsyncExitStack() as stack:
        sims = {name: await stack.enter_async_context(SmscSimulator(config)) for name in PROVIDERS}
        http_port = free_port()
        path = work / "gw.toml"
        path.write_text(gateway_config(http_port, {n: s.port for n, s in sims.items()}))
        argv = ["-m", "smsgw.cli", "--config", str(path), "run", "--procs", str(PROCS)]
        gateway = spawn("gateway", argv, work, servers.gateway_env())
        stack.callback(gateway.stop, 30.0)
        await asyncio.to_thread(wait_for_http, gateway, f"http://127.0.0.1:{http_port}/v1/ready")
        async with pg.open_pool(servers.database_url, 1) as pool:
            created = await client_store.create(pool, f"faults-{time.time_ns()}")
        yield Run(servers, sims, gateway, http_port, created.api_key, created.client.id)


# -- accounting ---------------------------------------------------------------------------------

STATES_SQL = """
SELECT count(*), count(*) FILTER (WHERE state >= 40), coalesce(sum(parts), 0),
       coalesce(max(parts), 1)
FROM messages WHERE client_id = %s
"""
ACCOUNT_SQL = """
SELECT count(*), count(*) FILTER (WHERE state >= 40) FROM messages WHERE id = ANY(%s::bigint[])
"""
# A row that contradicts its own history: a later state without the earlier one's mark.
INCONSISTENT_SQL = """
SELECT count(*) FROM messages WHERE client_id = %s AND (
    (state >= 30 AND state <> 45 AND submitted_at IS NULL) OR (state >= 40 AND done_at IS NULL)
    OR submitted_at < accepted_at OR (state = 41 AND parts_delivered < parts))
"""
PARTS_SQL = """
SELECT count(*) FILTER (WHERE p.status IS NULL),
       count(*) - count(DISTINCT (p.message_id, p.part))
FROM message_parts p JOIN messages m ON m.id = p.message_id WHERE m.client_id = %s
"""


@dataclass
class Row:
    fault: str
    accepted: int
    final: int
    lost: int
    missing: int  # accepted but absent from PostgreSQL: invariant 1 broken
    duplicated: int
    duplicate_bound: int
    inconsistent: int
    recover_s: float | None
    drain_s: float | None
    seconds: float
    notes: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


async def wait_final(run: Run, load: OpenLoad, within: float) -> float | None:
    """Poll until every message of the client is final; the wall time it happened, or None
    at the deadline or after ``STALL_S`` without one more message final."""
    deadline, last, moved = time.monotonic() + within, -1, time.monotonic()
    while time.monotonic() < min(deadline, moved + STALL_S):
        with contextlib.suppress(OSError, psycopg2.Error):
            total, final, *_ = (await query(run.servers.database_url, STATES_SQL, run.client_id))[0]
            if total >= len(load.accepted) and final == total:
                return time.time()
            if final != last:
                last, moved = final, time.monotonic()
        await asyncio.sleep(0.5)
    return None


async def account(name: str, run: Run, load: OpenLoad, bound_events: int, within: float) -> Row:
    started = time.time()
    done_at = await wait_final(run, load, within)
    url, ids = run.servers.database_url, sorted(load.accepted)
    present, final = (await query(url, ACCOUNT_SQL, ids))[0]
    _, _, parts, max_parts = (await query(url, STATES_SQL, run.client_id))[0]
    inconsistent = (await query(url, INCONSISTENT_SQL, run.client_id))[0][0]
    no_receipt, twice = (await query(url, PARTS_SQL, run.client_id))[0]
    fault_end = run.fault.ended or started
    return Row(
        fault=name,
        accepted=len(ids),
        final=final,
        lost=len(ids) - final,
        missing=len(ids) - present,
        duplicated=max(0, run.accepted_submits() - int(parts)),
        duplicate_bound=bound_events * WINDOW * len(PROVIDERS) * max_parts,
        inconsistent=inconsistent,
        recover_s=recover_seconds(run.per_second(), fault_end, load.rate),
        drain_s=None if done_at is None else round(done_at - fault_end, 1),
        seconds=round(time.time() - started, 1),
        notes={
            **run.fault.notes,
            "parts_without_receipt": no_receipt,
            "parts_recorded_twice": twice,
            "refused_by_api": load.refused,
        },
    )


def recover_seconds(per_second: dict[int, int], fault_end: float, rate: float) -> float | None:
    """Seconds from the fault's end to the first whole second with half the offered rate."""
    for second in sorted(s for s in per_second if s >= int(fault_end)):
        if per_second[second] >= rate / 2:
            return round(max(0.0, second + 1 - fault_end), 1)
    return None
