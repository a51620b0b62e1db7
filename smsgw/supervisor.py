"""``smsgw run --procs N``: N gateway processes on one machine, one per core.

Python has one GIL per process, so throughput past one core takes processes. The
supervisor starts (or adopts) the servers, then N children of ``smsgw run`` with the
servers' URLs in their environment: every child is the same stateless gateway, and
all shared state (queue, leases, the TPS limits, pool state) is in Redis and
PostgreSQL, exactly as with processes on several machines. Children with the ``api``
role share the HTTP port (SO_REUSEPORT: the kernel spreads connections). The sweeper
runs in child 0 only: it is cheap, and one is enough.

A child that dies is started again after a backoff; SIGTERM or SIGINT is passed on to
every child, which drain and exit; the supervisor exits when they all have, with 0 if
each of them did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence

from providers.backoff import backoff_delay

log = logging.getLogger("gateway.supervisor")

_ONLY_ONE = frozenset({"sweeper"})
HEALTHY_S = 10.0  # a child that ran this long died of something new: its backoff starts over


def child_roles(roles: frozenset[str], index: int) -> list[str]:
    return sorted(roles if index == 0 else roles - _ONLY_ONE)


class Supervisor:
    def __init__(self, base_argv: Sequence[str], roles: frozenset[str], procs: int) -> None:
        self._base = list(base_argv)
        self._roles = roles
        self._procs = procs
        self._stopping = asyncio.Event()
        self._children: dict[int, asyncio.subprocess.Process] = {}

    def argv(self, index: int) -> list[str]:
        roles = [arg for role in child_roles(self._roles, index) for arg in ("--role", role)]
        return [sys.executable, "-m", "smsgw.cli", *self._base, "run", *roles, "--reuse-port"]

    async def run(self, env: dict[str, str]) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop)
        wanted = [i for i in range(self._procs) if child_roles(self._roles, i)]
        codes = await asyncio.gather(*(self._keep(i, env) for i in wanted), return_exceptions=True)
        self._stop()  # one child that could not start must not leave the others behind
        return 0 if all(code == 0 for code in codes) else 1

    def _stop(self) -> None:
        self._stopping.set()
        for child in self._children.values():
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)

    async def _keep(self, index: int, env: dict[str, str]) -> int:
        """Run child ``index``; start it again whenever it dies before a stop."""
        attempt, code = 0, 0
        while not self._stopping.is_set():
            child_env = {**os.environ, **env, "SMSGW_PROCESS_INDEX": str(index)}
            child = await asyncio.create_subprocess_exec(*self.argv(index), env=child_env)
            self._children[index] = child
            if self._stopping.is_set():  # the stop came while it was starting
                child.send_signal(signal.SIGTERM)
            log.info("process %d started (pid %d)", index, child.pid)
            started = time.monotonic()
            code = await child.wait()
            if self._stopping.is_set():
                return code
            if time.monotonic() - started >= HEALTHY_S:
                attempt = 0
            log.error("process %d (pid %d) exited with %d; restarting", index, child.pid, code)
            await self._pause(backoff_delay(attempt, 1.0, 30.0))
            attempt += 1
        return code

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
