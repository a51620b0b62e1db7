"""The raw ceiling: what a minimal hand-written SMPP client gets out of the simulator.

The benchmark runner starts this in a process of its own, against the same simulator
process the gateway used, once the gateway's run is over, and reports the gateway's end
to end rate as a fraction of it. The client is ``loadtest.bench_smsc`` (windowed
submit_sm on transceiver binds, every deliver_sm receipt read and acknowledged, PDUs
built with ``loadtest.smpp_pdu``); this module gives it the scenario's message: the
text is encoded as the gateway would (``providers.encoding``), and a message of N parts
is N submit_sm of the first part's size, so messages/s = receipts/s ÷ N.

    python -m loadtest.raw_ceiling --port 2775 --messages 100000 --text "Привет"
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from loadtest.bench_smsc import BenchConfig, BenchResult, run_bench
from loadtest.smpp_pdu import ShortMessage
from loadtest.smsc import run
from providers.encoding import encode_parts


@dataclass(frozen=True)
class RawPlan:
    port: int
    messages: int
    text: str
    window: int = 500
    binds: int = 1
    host: str = "127.0.0.1"
    timeout: float = 300.0


def first_part(text: str) -> tuple[ShortMessage, int]:
    """The submit_sm of the text's first part, and how many parts the text takes."""
    parts = encode_parts(text, ref=7)
    head = parts[0]
    sm = ShortMessage(
        "smsgw", "79210000000", head.short_message, esm_class=head.esm_class,
        dest_addr_ton=1, dest_addr_npi=1, data_coding=head.data_coding,
    )  # fmt: skip
    return sm, len(parts)


def bench_config(plan: RawPlan) -> tuple[BenchConfig, int]:
    sm, parts = first_part(plan.text)
    config = BenchConfig(
        host=plan.host, port=plan.port, binds=plan.binds, window=plan.window,
        count=plan.messages * parts, timeout=plan.timeout, message=sm,
    )  # fmt: skip
    return config, parts


def as_json(plan: RawPlan, parts: int, result: BenchResult) -> dict[str, object]:
    return {
        "messages": plan.messages,
        "parts_per_message": parts,
        "submits_per_s": result.submits_per_s,
        "receipts_per_s": result.receipts_per_s,
        "client_cpu_s": result.client_cpu_seconds,
        "complete": result.complete,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="raw_ceiling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--text", default="benchmark message")
    parser.add_argument("--window", type=int, default=500, help="per bind")
    parser.add_argument("--binds", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    plan = RawPlan(args.port, args.messages, args.text, args.window, args.binds,
                   timeout=args.timeout)  # fmt: skip
    config, parts = bench_config(plan)
    print(json.dumps(as_json(plan, parts, run(run_bench(config)))), flush=True)


if __name__ == "__main__":
    main()
