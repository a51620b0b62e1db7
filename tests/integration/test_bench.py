"""``smsgw-bench`` at a tiny size: it completes, every message final, JSON with every
field, and nothing it started is left running.

The runner is started as the user starts it (its own process, the session's servers in
its environment), so that what it spawns is tracked exactly as in a real run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from gateway.embedded import ServerUrls

COUNT = 300


def _env(server_urls: ServerUrls) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": server_urls.database_url,
            "REDIS_URL": server_urls.redis_url}  # fmt: skip


def _bench(scenario: str, server_urls: ServerUrls, out: Path) -> tuple[dict, str]:  # type: ignore[type-arg]
    env = _env(server_urls)
    argv = [sys.executable, "-m", "loadtest.bench", scenario, "--count", str(COUNT),
            "--raw-messages", "500", "--stall", "30", "--timeout", "80",
            "--json", str(out)]  # fmt: skip
    done = subprocess.run(argv, env=env, capture_output=True, timeout=110, check=False)
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, stderr[-3000:] + done.stdout.decode(errors="replace")
    return json.loads(out.read_text()), stderr


def _left_behind(stderr: str) -> list[str]:
    """Processes whose command line names the run's work dir (the gateway's config) or
    the simulator's port."""
    work = re.search(r"logs in (\S+)", stderr)
    assert work is not None, stderr
    config = Path(work.group(1), "gateway.toml").read_text()
    smsc_port = re.search(r"\[\[providers\]\].*?\nport = (\d+)", config, re.S)
    assert smsc_port is not None
    marks = (work.group(1), f"--port {smsc_port.group(1)}")
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or ())
        if any(mark in line for mark in marks):
            found.append(line)
    return found


def _check_report(report: dict, scenario: str) -> None:  # type: ignore[type-arg]
    assert report["scenario"] == scenario and report["ok"] is True
    assert report["offered"] == report["accepted"] == COUNT
    assert report["not_final"] == 0 and report["errors"] == {}
    assert report["final_states"] == {"delivered": COUNT}
    rates = report["rates"]
    assert set(rates) == {"accepted_per_s", "submitted_per_s", "receipts_per_s",
                          "end_to_end_per_s"}  # fmt: skip
    assert all(rate > 0 for rate in rates.values())
    for name in ("accept (HTTP request)", "accept → submitted", "accept → delivered"):
        latency = report["latency_ms"][name]
        assert latency["n"] > 0
        assert 0 <= latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    names = {p["name"] for p in report["processes"]}
    assert {"gateway", "smsc", "load generator"} <= names
    assert all(p["cpu_s"] >= 0 and p["peak_rss_mb"] > 0 for p in report["processes"])
    assert report["simulator"]["resp_ok"] >= COUNT <= report["simulator"]["receipts_sent"]
    raw = report["raw_ceiling"]
    assert raw["complete"] and raw["messages_per_s"] > 0 and report["fraction_of_raw"] > 0


@pytest.mark.parametrize("scenario", ["single", "batch"])
def test_a_tiny_run_completes_reports_and_leaves_nothing(
    scenario: str, server_urls: ServerUrls, tmp_path: Path
) -> None:
    report, stderr = _bench(scenario, server_urls, tmp_path / "report.json")
    _check_report(report, scenario)
    if scenario == "single":
        callbacks = report["latency_ms"]["accept → callback"]
        assert callbacks["n"] == COUNT
    assert _left_behind(stderr) == []


def test_an_interrupted_run_stops_everything_it_started(
    server_urls: ServerUrls, tmp_path: Path
) -> None:
    """SIGTERM (as Ctrl-C) while the load runs: exit 130, and no gateway or simulator left."""
    err = tmp_path / "stderr"
    argv = [sys.executable, "-m", "loadtest.bench", "single", "--count", "100000"]
    with err.open("wb") as sink:
        bench = subprocess.Popen(argv, env=_env(server_urls), stdout=sink, stderr=sink)
        try:
            deadline = time.monotonic() + 60
            while " s  accepted" not in err.read_text() and time.monotonic() < deadline:
                assert bench.poll() is None, err.read_text()[-3000:]
                time.sleep(0.2)  # polling a child's output: there is no event to await
            bench.send_signal(signal.SIGTERM)
            assert bench.wait(50) == 130, err.read_text()[-3000:]
        finally:
            if bench.poll() is None:
                bench.kill()
                bench.wait(10)
    assert _left_behind(err.read_text()) == []
