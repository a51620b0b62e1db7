"""The median of several runs of one scenario (``smsgw-bench SCENARIO --repeat 3``).

Wall-clock rates on a shared 2-core machine move by ±20–30 % from run to run, so a
figure worth publishing is the median of a few: the headline rates, the latencies'
p50/p99, and CPU per message of each process (pure: reports in, figures out).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from loadtest.report import Report

Figures = dict[str, float]


def figures(report: Report) -> Figures:
    """What is compared across runs, flat: rates, latency p50/p99, CPU µs per message."""
    found: Figures = {
        "accepted/s": report.rates.accepted_per_s,
        "submitted/s": report.rates.submitted_per_s,
        "receipts/s": report.rates.receipts_per_s,
        "end to end/s": report.rates.end_to_end_per_s,
    }
    if report.fraction_of_raw is not None:
        found["share of raw ceiling %"] = report.fraction_of_raw * 100
    for name, spread in report.latency_ms.items():
        if spread.p50 is not None and spread.p99 is not None:
            found[f"{name} p50 ms"] = spread.p50
            found[f"{name} p99 ms"] = spread.p99
    per_message = 1e6 / max(report.accepted, 1)
    for usage in report.processes:
        found[f"{usage.name} CPU µs/msg"] = usage.cpu_s * per_message
        found[f"{usage.name} peak RSS MB"] = usage.peak_rss_mb
    return found


def medians(runs: Sequence[Figures]) -> dict[str, tuple[float, list[float]]]:
    """Each figure's median and its values, for the figures every run has."""
    names = [n for n in runs[0] if all(n in r for r in runs)] if runs else []
    return {n: (statistics.median(r[n] for r in runs), [r[n] for r in runs]) for n in names}


def render_medians(scenario: str, found: dict[str, tuple[float, list[float]]]) -> str:
    runs = len(next(iter(found.values()))[1]) if found else 0
    lines = [f"== smsgw-bench {scenario}: median of {runs} runs =="]
    for name, (median, values) in found.items():
        each = ", ".join(f"{v:,.1f}" for v in values)
        lines.append(f"  {name:<40}{median:>12,.1f}   ({each})")
    return "\n".join(lines)
