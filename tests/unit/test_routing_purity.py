"""routing is pure: it imports no IO library and nothing of ours above it."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = (
    "asyncio", "aiohttp", "aiopg", "psycopg2", "redis", "socket", "ssl", "selectors",
    "uvloop", "aiosmpplib", "http", "subprocess", "gateway", "providers", "smsgw",
)  # fmt: skip


def test_routing_imports_no_io_and_nothing_above_it() -> None:
    code = "import sys, routing, routing._bench; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    bad = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN)
    assert not bad, f"routing pulled in {bad}"
