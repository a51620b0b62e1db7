"""What a benchmark run measured, as a printable table and as JSON (pure: no IO here).

Latencies are in milliseconds and summarised by nearest-rank percentiles (the value at
rank ceil(q·n), an observed value, never an interpolation); rates are messages per
second of wall clock; CPU in seconds; RSS in MB (the peak of the samples).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Spread:
    """p50 / p95 / p99 / max of one latency, in ms, over ``n`` observations."""

    n: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None


def nearest_rank(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values: the smallest value with at least q·n at or below."""
    if not ordered:
        raise ValueError("no values")
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def spread(values: Sequence[float]) -> Spread:
    if not values:
        return Spread()
    ordered = sorted(values)
    p50, p95, p99 = (nearest_rank(ordered, q) for q in QUANTILES)
    return Spread(len(ordered), p50, p95, p99, ordered[-1])


@dataclass(frozen=True)
class ProcessUsage:
    name: str
    cpu_s: float
    peak_rss_mb: float


@dataclass(frozen=True)
class RawCeiling:
    """The hand-written SMPP client against the same simulator (``loadtest.raw_ceiling``)."""

    messages: int
    parts_per_message: int
    submits_per_s: float
    receipts_per_s: float
    client_cpu_s: float
    complete: bool

    @property
    def messages_per_s(self) -> float:
        return min(self.submits_per_s, self.receipts_per_s) / self.parts_per_message


@dataclass(frozen=True)
class Rates:
    accepted_per_s: float = 0.0
    submitted_per_s: float = 0.0
    receipts_per_s: float = 0.0
    end_to_end_per_s: float = 0.0  # the scenario's headline: see ``Report.end_to_end``


@dataclass(frozen=True)
class Report:
    scenario: str
    params: Mapping[str, Any]
    offered: int
    accepted: int
    seconds: float
    rates: Rates
    end_to_end: str  # what end_to_end_per_s counts, in words
    latency_ms: Mapping[str, Spread]
    errors: Mapping[str, int]
    final_states: Mapping[str, int]
    not_final: int
    processes: tuple[ProcessUsage, ...]
    raw_ceiling: RawCeiling | None = None
    notes: tuple[str, ...] = field(default=())
    simulator: Mapping[str, int] = field(default_factory=dict)  # its own counters at the end

    @property
    def fraction_of_raw(self) -> float | None:
        raw = self.raw_ceiling
        if raw is None or not raw.messages_per_s:
            return None
        return self.rates.end_to_end_per_s / raw.messages_per_s

    @property
    def ok(self) -> bool:
        """Every offered message accepted and final, and no error of the load."""
        return self.accepted == self.offered and self.not_final == 0 and not self.errors


def to_json(report: Report) -> dict[str, Any]:
    data = asdict(report)
    data["fraction_of_raw"] = report.fraction_of_raw
    data["ok"] = report.ok
    if report.raw_ceiling is not None:
        data["raw_ceiling"]["messages_per_s"] = report.raw_ceiling.messages_per_s
    return data


def render(report: Report) -> str:
    """The table printed at the end of a run."""
    lines = [f"== smsgw-bench {report.scenario}: " + _params(report.params) + " =="]
    lines += _rate_lines(report)
    lines.append(f"  {'latency (ms)':<26}{'n':>9}{'p50':>10}{'p95':>10}{'p99':>10}{'max':>10}")
    lines += [_spread_line(name, s) for name, s in report.latency_ms.items()]
    lines += _outcome_lines(report)
    lines.append(f"  {'process':<26}{'CPU s':>9}{'peak RSS MB':>14}")
    lines += [f"  {p.name:<26}{p.cpu_s:>9.2f}{p.peak_rss_mb:>14.0f}" for p in report.processes]
    if report.simulator:
        lines.append("  simulator: " + ", ".join(f"{k} {v:,}" for k, v in report.simulator.items()))
    lines += [f"  note: {note}" for note in report.notes]
    lines.append("  result: " + ("OK" if report.ok else "NOT OK (see errors / not final)"))
    return "\n".join(lines)


def _params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _rate_lines(report: Report) -> list[str]:
    r = report.rates
    lines = [
        f"  offered {report.offered:,}, accepted {report.accepted:,} in {report.seconds:.1f} s",
        f"  {'accepted/s':<26}{r.accepted_per_s:>12,.0f}",
        f"  {'submitted/s':<26}{r.submitted_per_s:>12,.0f}",
        f"  {'receipts/s':<26}{r.receipts_per_s:>12,.0f}",
        f"  {'end to end/s':<26}{r.end_to_end_per_s:>12,.0f}   ({report.end_to_end})",
    ]
    raw, fraction = report.raw_ceiling, report.fraction_of_raw
    if raw is not None:
        lines.append(
            f"  {'raw SMPP ceiling msg/s':<26}{raw.messages_per_s:>12,.0f}   "
            f"(gateway = {fraction or 0:.1%} of it; {raw.messages:,} messages, "
            f"{raw.parts_per_message} part(s) each)"
        )
    return lines


def _spread_line(name: str, s: Spread) -> str:
    cells = "".join(f"{_ms(v):>10}" for v in (s.p50, s.p95, s.p99, s.max))
    return f"  {name:<26}{s.n:>9,}{cells}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


def _outcome_lines(report: Report) -> list[str]:
    states = ", ".join(f"{k} {v:,}" for k, v in report.final_states.items()) or "none"
    errors = ", ".join(f"{k} {v:,}" for k, v in report.errors.items()) or "none"
    return [
        f"  final states: {states}",
        f"  not final: {report.not_final:,}",
        f"  errors: {errors}",
    ]
