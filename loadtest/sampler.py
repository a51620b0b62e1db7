"""CPU seconds and peak RSS of the processes a benchmark runs, sampled with psutil.

A tracked process may start children (``smsgw run --procs N`` is a supervisor and N
gateways); each descendant gets a label of its own the first time a sample sees it. CPU
is the last sampled user + system time since ``mark()`` (so take one more sample just
before stopping anything); RSS is the highest sample. Every process ever seen is
remembered, so that the runner can make sure none outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psutil

from loadtest.report import ProcessUsage

MB = 1024 * 1024
_SERVERS = frozenset({"postgresql", "redis"})


@dataclass
class _Seen:
    label: str
    process: psutil.Process
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    cpu_before: float = 0.0  # at ``mark()``: start-up (imports, migrations) is not the load


@dataclass
class Sampler:
    roots: dict[str, tuple[psutil.Process, bool]] = field(default_factory=dict)
    seen: dict[int, _Seen] = field(default_factory=dict)
    # Finding descendants reads every /proc entry (a fifth of the load generator's CPU on a
    # busy machine): done on every ``rescan``-th sample only; known processes every time.
    rescan: int = 10
    _samples: int = 0

    def track(self, name: str, pid: int, descendants: bool = True) -> None:
        self.roots[name] = (psutil.Process(pid), descendants)
        self._samples = 0  # the next sample looks for the new family
        self.sample()

    def sample(self) -> None:
        if self._samples % self.rescan == 0:
            self.discover()
        self._samples += 1
        for seen in self.seen.values():
            _update(seen)

    def discover(self) -> None:
        for name, (root, descendants) in self.roots.items():
            for i, proc in enumerate(_family(root, descendants)):
                if proc.pid not in self.seen:
                    label = name if i == 0 else f"{name} #{len(self._labels(name))}"
                    self.seen[proc.pid] = _Seen(label, proc)

    def _labels(self, name: str) -> list[str]:
        return [s.label for s in self.seen.values() if _root(s.label) == name]

    def mark(self) -> None:
        """From now on: CPU is counted from here (RSS peaks stay those of the whole run)."""
        self.sample()
        for seen in self.seen.values():
            seen.cpu_before = seen.cpu_s

    def usage(self) -> tuple[ProcessUsage, ...]:
        """One line per gateway process; a server's processes (PostgreSQL's backends) as
        one, with their CPU added up and the largest RSS."""
        lines: dict[str, ProcessUsage] = {}
        for s in self.seen.values():
            label = _root(s.label) if _root(s.label) in _SERVERS else s.label
            was = lines.get(label, ProcessUsage(label, 0.0, 0.0))
            lines[label] = ProcessUsage(
                label, was.cpu_s + s.cpu_s - s.cpu_before, max(was.peak_rss_mb, s.peak_rss_mb)
            )
        return tuple(lines.values())

    def leftovers(self, names: set[str]) -> list[psutil.Process]:
        """Processes of ``names`` (and their descendants) still running."""
        return [s.process for s in self.seen.values() if _root(s.label) in names and _alive(s)]

    @contextlib.asynccontextmanager
    async def running(self, interval: float = 0.5) -> AsyncIterator[Sampler]:
        task = asyncio.create_task(self._loop(interval))
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.sample()

    async def _loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)  # sampling: a clock, not an event
            self.sample()


def listener_pid(url: str) -> int | None:
    """The process listening on a loopback URL's port (PostgreSQL's postmaster, Redis),
    to count the servers' CPU beside the gateway's; None for a remote server or when it
    cannot be told."""
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1") or parts.port is None:
        return None
    try:
        found = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    return next(
        (c.pid for c in found
         if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == parts.port and c.pid),
        None,
    )  # fmt: skip


def _family(root: psutil.Process, descendants: bool) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)] if descendants else [root]
    except psutil.NoSuchProcess:
        return []


def _update(seen: _Seen) -> None:
    try:
        with seen.process.oneshot():
            times = seen.process.cpu_times()
            rss = seen.process.memory_info().rss / MB
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return
    seen.cpu_s = times.user + times.system
    seen.peak_rss_mb = max(seen.peak_rss_mb, rss)


def _root(label: str) -> str:
    return label.split(" #", 1)[0]


def _alive(seen: _Seen) -> bool:
    try:
        return bool(seen.process.is_running() and seen.process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
