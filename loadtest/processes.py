"""Starting and stopping the processes a demo, benchmark or fault test runs: for real."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_LISTENING = re.compile(r"listening on ([\d.]+):(\d+)")

SPAWNED_LOGS: list[Path] = []  # every child's log: the test session scans them for leaks


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def peak_rss_mb(self) -> float | None:
        """The process's peak resident set (VmHWM), read while it is alive."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(match.group(1)) / 1024 if match else None

    def cpu_seconds(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: no drain, no cleanup (the fault the tests inject)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def spawn(
    name: str, argv: Sequence[str], log_dir: Path, env: Mapping[str, str] | None = None
) -> Child:
    log_path = _fresh_log(log_dir, name)
    SPAWNED_LOGS.append(log_path)
    out = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, *argv],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    out.close()
    return Child(name, proc, log_path)


def _fresh_log(log_dir: Path, name: str) -> Path:
    """A new file: an old "listening on" line must not be read, nor an old log lost."""
    path = log_dir / f"{name}.log"
    attempt = 1
    while path.exists():
        attempt += 1
        path = log_dir / f"{name}-{attempt}.log"
    return path


def wait_for_port(child: Child, timeout: float = 20.0) -> int:
    """The port a child printed as ``listening on HOST:PORT``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = _LISTENING.search(child.log_path.read_text(errors="replace"))
        if match:
            return int(match.group(2))
        _check_alive(child)
        time.sleep(0.05)
    raise TimeoutError(f"{child.name} did not report its port; see {child.log_path}")


def wait_for_http(child: Child, url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        _check_alive(child)
        time.sleep(0.1)
    raise TimeoutError(f"{child.name} not ready at {url}; see {child.log_path}")


def _check_alive(child: Child) -> None:
    if child.proc.poll() is not None:
        tail = child.log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{child.name} exited with {child.proc.returncode}:\n{tail}")
