"""Reloading what may change without a restart (the route table), from the settings file.

Every process watches the file itself (its modification time, every ``interval`` seconds,
and at once on SIGHUP), so that an edit reaches all processes on all machines that read
the same file. A file that fails to parse is logged and ignored: the running table stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Mapping
from pathlib import Path

from gateway.adapters.failures import raise_if_cancelling
from gateway.config_schema import ConfigError
from gateway.settings import Settings, load

log = logging.getLogger("gateway.reload")


class SettingsWatcher:
    def __init__(
        self,
        path: Path,
        env: Mapping[str, str],
        apply: Callable[[Settings], None],
        interval: float = 2.0,
    ) -> None:
        self._path = path
        self._env = env
        self._apply = apply
        self._interval = interval
        self._poke = asyncio.Event()
        self.reloads = 0

    def _mtime(self) -> float:
        try:
            return self._path.stat().st_mtime
        except OSError:
            return 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self._poke.set)
        try:
            seen = self._mtime()
            while True:
                raise_if_cancelling()  # a cancel lost in aiopg's wait_for
                await self._wait()
                if self._poke.is_set() or self._mtime() != seen:
                    self._poke.clear()
                    seen = self._mtime()
                    self.reload()
        finally:
            loop.remove_signal_handler(signal.SIGHUP)

    async def _wait(self) -> None:
        # Either a SIGHUP, or the interval passed: look at the file's modification time.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._poke.wait(), self._interval)

    def reload(self) -> bool:
        try:
            settings = load(self._path, self._env)
            self._apply(settings)
        except (ConfigError, OSError, ValueError) as exc:
            log.error("settings %s not reloaded, the running ones stay: %s", self._path, exc)
            return False
        self.reloads += 1
        log.info("settings reloaded from %s", self._path)
        return True
