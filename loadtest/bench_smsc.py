"""Raw-ceiling SMPP client: what one lean ESME gets out of an SMSC (normally our simulator).

N transceiver binds each keep W submit_sm in flight; the run ends when ``count`` responses and
(with receipts) a receipt for every accepted submit have arrived. It is lean on purpose, so
that on a 2-core machine it does not become the bottleneck it measures: one submit_sm body is
encoded up front, inbound PDUs are read by header only, and all PDUs a chunk calls for
(receipt acks, the next submits) leave in one write.

    python -m loadtest.bench_smsc --spawn --count 200000 --window 500 --binds 2
    python -m loadtest.bench_smsc --port 2775 --count 100000 --window 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import cast

from loadtest.smpp_pdu import (
    Bind,
    CommandId,
    Pdu,
    PduReader,
    ShortMessage,
    Status,
    deliver_sm_resp,
    encode_bind,
    encode_sm_body,
    enquire_link_resp,
    frame,
)
from loadtest.smsc import run


@dataclass(frozen=True)
class BenchConfig:
    host: str = "127.0.0.1"
    port: int = 2775
    binds: int = 2
    window: int = 200  # per bind
    count: int = 100_000  # submits over all binds
    system_id: str = "smsgw"
    password: str = field(default="secret", repr=False)
    receipts: bool = True
    timeout: float = 120.0
    message: ShortMessage | None = None  # the submit_sm sent every time (default: a short one)


@dataclass
class BenchResult:
    submitted: int = 0
    resp_ok: int = 0
    resp_error: int = 0
    receipts: int = 0
    submit_seconds: float = 0.0
    receipt_seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    smsc_cpu_seconds: float | None = None
    complete: bool = False

    @property
    def submits_per_s(self) -> float:
        return (self.resp_ok + self.resp_error) / self.submit_seconds if self.submit_seconds else 0

    @property
    def receipts_per_s(self) -> float:
        return self.receipts / self.receipt_seconds if self.receipt_seconds else 0.0

    def summary(self) -> str:
        done = "" if self.complete else " (INCOMPLETE: timed out)"
        text = (
            f"submits: {self.resp_ok} ok + {self.resp_error} errors in {self.submit_seconds:.2f} s"
            f" = {self.submits_per_s:,.0f}/s; receipts: {self.receipts} in"
            f" {self.receipt_seconds:.2f} s = {self.receipts_per_s:,.0f}/s{done};"
            f" client CPU {self._per_message(self.client_cpu_seconds)}"
        )
        if self.smsc_cpu_seconds is not None:
            text += f"; smsc CPU {self._per_message(self.smsc_cpu_seconds)}"
        return text

    def _per_message(self, cpu: float) -> str:
        return f"{cpu:.2f} s ({cpu / max(self.submitted, 1) * 1e6:.0f} µs/submit)"


class _Run:
    """What the binds of one run share: the counts, the clock and the finish line.

    Receipts come back round-robin over all binds, so only the totals can tell when a run
    is over.
    """

    def __init__(self, config: BenchConfig) -> None:
        self.config = config
        self.result = BenchResult()
        self.t0 = time.perf_counter()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def check_done(self) -> None:
        result = self.result
        if result.resp_ok + result.resp_error < self.config.count or self.done.done():
            return
        elapsed = time.perf_counter() - self.t0
        result.submit_seconds = result.submit_seconds or elapsed
        if result.receipts >= (result.resp_ok if self.config.receipts else 0):
            result.receipt_seconds, result.complete = elapsed, True
            self.done.set_result(None)

    def fail(self, reason: str) -> None:
        if not self.done.done():
            self.done.set_exception(RuntimeError(reason))


class _Client(asyncio.Protocol):
    """One transceiver bind: ``quota`` submits, at most ``window`` in flight."""

    transport: asyncio.Transport

    def __init__(self, run: _Run, quota: int) -> None:
        self.run, self.quota, self.sent = run, quota, 0
        self.reader = PduReader()
        sm = run.config.message or ShortMessage("12345", "447700900123", b"benchmark message")
        self._body = encode_sm_body(sm._replace(registered_delivery=int(run.config.receipts)))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        bind = Bind(self.run.config.system_id, self.run.config.password)
        self.transport.write(encode_bind(CommandId.BIND_TRANSCEIVER, 1, bind))

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.fail(f"connection lost: {exc}")

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        result, out, credit = self.run.result, [], 0
        while (pdu := self.reader.next_pdu()) is not None:
            command = pdu.command_id
            if command == CommandId.SUBMIT_SM_RESP:
                credit += 1
                if pdu.status == Status.ESME_ROK:
                    result.resp_ok += 1
                else:
                    result.resp_error += 1
            elif command == CommandId.DELIVER_SM:
                result.receipts += 1
                out.append(deliver_sm_resp(pdu.sequence))
            else:
                credit += self._on_other(pdu, out)
        self._send(out, credit)

    def _on_other(self, pdu: Pdu, out: list[bytes]) -> int:
        """Rare PDUs; returns the submit credit they open."""
        if pdu.command_id == CommandId.BIND_TRANSCEIVER_RESP and pdu.status == 0:
            return self.run.config.window
        if pdu.command_id == CommandId.ENQUIRE_LINK:
            out.append(enquire_link_resp(pdu.sequence))
        elif pdu.command_id not in (CommandId.DELIVER_SM_RESP, CommandId.ENQUIRE_LINK_RESP):
            self.run.fail(f"unexpected PDU 0x{pdu.command_id:08X} status 0x{pdu.status:02X}")
        return 0

    def _send(self, out: list[bytes], credit: int) -> None:
        credit = min(credit, self.quota - self.sent)
        for _ in range(credit):
            self.sent += 1
            out.append(frame(CommandId.SUBMIT_SM, self.sent + 1, self._body))
        self.run.result.submitted += credit
        if out:
            self.transport.write(b"".join(out))
        self.run.check_done()


async def run_bench(config: BenchConfig) -> BenchResult:
    """Bind, submit ``count`` messages, wait for their receipts; return what was counted."""
    loop = asyncio.get_running_loop()
    cpu0, run = time.process_time(), _Run(config)
    clients = [
        (await loop.create_connection(partial(_Client, run, quota), config.host, config.port))[1]
        for quota in _split(config.count, config.binds)
    ]
    try:
        await asyncio.wait_for(asyncio.shield(run.done), config.timeout)
    except TimeoutError:
        elapsed = time.perf_counter() - run.t0
        run.result.submit_seconds = run.result.submit_seconds or elapsed
        run.result.receipt_seconds = elapsed
    finally:
        for client in clients:
            client.transport.close()
    run.result.client_cpu_seconds = time.process_time() - cpu0
    return run.result


def _split(count: int, parts: int) -> list[int]:
    return [count // parts + (1 if i < count % parts else 0) for i in range(parts)]


# -- spawning the simulator ------------------------------------------------------------------


async def _spawn_smsc(extra_args: list[str]) -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtest.smsc", "--port", "0", *extra_args,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await proc.stdout.readline()).decode().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"simulator did not start: {line!r}")
    return proc, int(line.rsplit(":", 1)[1])


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, from /proc (Linux only)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _bench_spawned(config: BenchConfig, smsc_args: list[str]) -> BenchResult:
    proc, port = await _spawn_smsc(smsc_args)
    try:
        before = _cpu_seconds(proc.pid)
        result = await run_bench(BenchConfig(**{**asdict(config), "port": port}))
        after = _cpu_seconds(proc.pid)
        if before is not None and after is not None:
            result.smsc_cpu_seconds = after - before
        return result
    finally:
        proc.terminate()
        await proc.wait()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench_smsc", description=__doc__.split("\n\n")[0])
    defaults = BenchConfig()
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--binds", type=int, default=defaults.binds)
    parser.add_argument("--window", type=int, default=defaults.window, help="per bind")
    parser.add_argument("--count", type=int, default=defaults.count)
    parser.add_argument("--system-id", default=defaults.system_id)
    parser.add_argument("--password", default=defaults.password)
    parser.add_argument("--no-receipts", action="store_true")
    parser.add_argument("--timeout", type=float, default=defaults.timeout)
    parser.add_argument("--spawn", action="store_true", help="start the simulator on a free port")
    parser.add_argument("--smsc-args", default="", help="simulator flags, with --spawn")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    config = BenchConfig(
        args.host, args.port, args.binds, args.window, args.count, args.system_id,
        args.password, not args.no_receipts, args.timeout,
    )  # fmt: skip
    smsc_args = shlex.split(args.smsc_args)
    report = run(_bench_spawned(config, smsc_args) if args.spawn else run_bench(config))
    if args.json:
        rates = {"submits_per_s": report.submits_per_s, "receipts_per_s": report.receipts_per_s}
        print(json.dumps({**asdict(report), **rates}))
    else:
        print(report.summary())
    if not report.complete:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
