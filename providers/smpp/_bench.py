"""Throughput and CPU per message of an SMPP bind pool against the SMSC simulator.

The simulator runs in its own process (spawned here, or already listening at ``--port``),
so that the CPU time counted is this process's: the provider plus a thin load loop.

    python -m providers.smpp._bench --count 50000 --window 200
    python -m providers.smpp._bench --port 2775 --mode submit --binds 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from loadtest.processes import spawn, wait_for_port
from providers.base import Receipt, Submission
from providers.smpp import SmppProvider, SmppSettings
from providers.smpp.settings import BindMode

MODES: dict[str, tuple[BindMode, bool]] = {
    "submit": ("transceiver", False),  # submit_sm only, no receipts asked for
    "submit+receipt": ("transceiver", True),
    "tx-submit": ("transmitter+receiver", False),
}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(
    port: int, mode: str, count: int, window: int, binds: int = 1
) -> dict[str, float | str | int]:
    bind_mode, receipts_on = MODES[mode]
    done = asyncio.Event()
    receipts: list[Receipt] = []

    def on_receipt(receipt: Receipt) -> None:
        receipts.append(receipt)
        if len(receipts) == count:
            done.set()

    settings = SmppSettings(
        "bench", "127.0.0.1", port, "smsgw", "secret", bind_mode=bind_mode, window=window,
        binds=binds,
    )  # fmt: skip
    provider = SmppProvider(settings, on_receipt)
    await provider.start()
    cpu, wall = cpu_seconds(), time.perf_counter()
    await _load(provider, count, window * binds * 2, receipts_on)
    submitted = time.perf_counter() - wall
    if receipts_on:
        await asyncio.wait_for(done.wait(), 120)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    await provider.close()
    return {
        "mode": mode,
        "messages": count,
        "window": window,
        "binds": binds,
        "submit_per_s": round(count / submitted),
        "end_to_end_per_s": round(count / wall),
        "cpu_us_per_message": round(cpu / count * 1e6, 1),
    }


async def _load(provider: SmppProvider, count: int, workers: int, want_receipt: bool) -> None:
    ids = iter(range(count))

    async def worker() -> None:
        for message_id in ids:
            await provider.submit(
                Submission(message_id, "+79211234567", "Acme", "hello", None, want_receipt)
            )

    await asyncio.gather(*(worker() for _ in range(workers)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, help="a simulator already listening here")
    parser.add_argument("--mode", choices=[*MODES, "all"], default="all")
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--binds", type=int, default=1)
    args = parser.parse_args()
    child = None
    port = args.port
    if port is None:
        argv = ["-m", "loadtest.smsc", "--port", "0", "--receipt-delay", "0.05"]
        child = spawn("smsc", argv, Path(tempfile.mkdtemp(prefix="smppbench")))
        port = wait_for_port(child)
    try:
        for mode in MODES if args.mode == "all" else [args.mode]:
            result = uvloop.run(run(port, mode, args.count, args.window, args.binds))
            print(json.dumps(result), flush=True)
    finally:
        if child is not None:
            print(f"simulator CPU: {child.cpu_seconds()} s", file=sys.stderr)
            child.stop()


if __name__ == "__main__":
    main()
