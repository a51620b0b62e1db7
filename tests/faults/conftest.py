"""The fault table: every scenario adds a row; the session prints it and writes it as JSON."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.rig import Row, Servers, servers

TABLE_PATH = Path(os.environ.get("SMSGW_FAULT_TABLE", "/tmp/smsgw-faults.json"))
ROWS: list[Row] = []


@pytest.fixture(scope="module")
def fault_servers() -> Iterator[Servers]:
    with servers() as started:
        yield started


def table(rows: list[Row]) -> list[str]:
    head = ("fault", "accepted", "final", "lost", "dup (bound)", "recover s", "drain s")
    lines = [f"{head[0]:<26}" + "".join(f"{h:>13}" for h in head[1:])]
    for row in rows:
        cells = (
            row.accepted, row.final, row.lost, f"{row.duplicated} ({row.duplicate_bound})",
            _s(row.recover_s), _s(row.drain_s),
        )  # fmt: skip
        lines.append(f"{row.fault:<26}" + "".join(f"{c!s:>13}" for c in cells))
    return lines


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def save(rows: list[Row]) -> None:
    """The table as JSON, rewritten after each row so that an interrupted run keeps it."""
    document = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "rows": [row.as_dict() for row in rows],
    }
    TABLE_PATH.write_text(json.dumps(document, indent=2, default=str))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    terminalreporter.section("fault suite")
    for line in table(ROWS):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(details and notes per fault in {TABLE_PATH})")
