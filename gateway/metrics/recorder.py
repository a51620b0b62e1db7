"""Counters and histograms summed over every process in Redis, rendered by any of them.

Theory of operation
-------------------
A scrape must see the whole deployment, whichever process answers it: ``smsgw run
--procs N`` children share one HTTP port (SO_REUSEPORT, so a scrape lands on a random
child), dispatch-only processes have no HTTP site at all, and a second machine is just
more processes on the same servers. prometheus-client's multiprocess mode covers only
the first case (one directory per machine, chosen by an environment variable read at
import) and per-process ports cannot share one. So the totals live where the rest of
the shared state lives: each process adds to a local dict on its hot paths (a dict
increment, per batch where the code has a batch), and once a second ``flush`` moves
the deltas into one Redis hash with HINCRBYFLOAT in one pipeline. ``/metrics`` on any
process reads the hash and renders it through prometheus-client's metric families.

Every process reports the same cluster-wide totals: scrape one target (or several and
take ``max``; never ``sum`` over targets). A process killed loses at most its last
second of counts; Redis losing its data resets the counters, which Prometheus's
``rate()`` reads as a counter reset. Deltas that could not be written are kept for the
next flush.

The local dict is per process (module state, like prometheus-client's own registry):
several gateways in one process (the tests) share it, and whichever flushes first
carries the counts.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

Labels = tuple[str, ...]
# (metric name, sample part: "" for a counter, "sum" / "count" / a bucket's "le", labels)
_Key = tuple[str, str, Labels]

_pending: dict[_Key, float] = {}
DECLARED: list[Counter | Histogram] = []


def key(prefix: str) -> str:
    return f"{prefix}:{{metrics}}:totals"


@dataclass(frozen=True)
class Counter:
    """A counter family; ``name`` is the exported name, ending in ``_total``."""

    name: str
    doc: str
    labels: Labels = ()

    def __post_init__(self) -> None:
        DECLARED.append(self)

    def inc(self, *values: str, by: float = 1.0) -> None:
        _check(self.name, self.labels, values)
        if by:
            k = (self.name, "", values)
            _pending[k] = _pending.get(k, 0.0) + by

    def family(self, samples: Mapping[tuple[str, Labels], float]) -> Metric:
        family = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        for (_, values), value in sorted(samples.items()):
            family.add_metric(values, value)
        if not self.labels and not samples:
            family.add_metric([], 0.0)  # one series from the start, so rate() has a base
        return family


@dataclass(frozen=True)
class Histogram:
    """A histogram family with fixed buckets (upper bounds, ascending, in base units)."""

    name: str
    doc: str
    labels: Labels
    buckets: tuple[float, ...]
    _les: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        les = (*(_le(b) for b in self.buckets), "+Inf")
        object.__setattr__(self, "_les", les)
        DECLARED.append(self)

    def observe(self, value: float, *values: str) -> None:
        _check(self.name, self.labels, values)
        name, pending = self.name, _pending
        for k, amount in (
            ((name, self._les[bisect.bisect_left(self.buckets, value)], values), 1.0),
            ((name, "sum", values), value),
            ((name, "count", values), 1.0),
        ):
            pending[k] = pending.get(k, 0.0) + amount

    def observe_many(self, observed: Iterable[float], *values: str) -> None:
        """Several observations of one label set: one update per bucket for them all."""
        _check(self.name, self.labels, values)
        counts = [0] * len(self._les)
        total = 0.0
        for value in observed:
            counts[bisect.bisect_left(self.buckets, value)] += 1
            total += value
        parts = [(le, float(n)) for le, n in zip(self._les, counts, strict=True) if n]
        if parts:
            for part, amount in (*parts, ("sum", total), ("count", float(sum(counts)))):
                k = (self.name, part, values)
                _pending[k] = _pending.get(k, 0.0) + amount

    def family(self, samples: Mapping[tuple[str, Labels], float]) -> Metric:
        family = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        for values in sorted({values for _, values in samples}):
            running, cumulative = 0.0, []
            for le in self._les:
                running += samples.get((le, values), 0.0)
                cumulative.append((le, running))
            family.add_metric(list(values), cumulative, samples.get(("sum", values), 0.0))
        return family


def _check(name: str, labels: Labels, values: Labels) -> None:
    if len(values) != len(labels):
        raise ValueError(f"{name}: labels {labels}, got {len(values)} values")


def _le(bound: float) -> str:
    return repr(float(bound))


def take() -> dict[_Key, float]:
    """The deltas gathered since the last call (and a fresh dict for the next ones)."""
    global _pending
    taken, _pending = _pending, {}
    return taken


def give_back(deltas: Mapping[_Key, float]) -> None:
    for k, value in deltas.items():
        _pending[k] = _pending.get(k, 0.0) + value


async def flush(redis: aioredis.Redis, prefix: str) -> None:
    """Add this process's deltas to the shared totals; on failure they wait for the next."""
    deltas = take()
    if not deltas:
        return
    pipe = redis.pipeline(transaction=False)
    for (name, part, values), value in deltas.items():
        pipe.hincrbyfloat(key(prefix), json.dumps([name, part, *values]), value)
    try:
        await pipe.execute()
    except BaseException:
        give_back(deltas)
        raise


async def read(redis: aioredis.Redis, prefix: str) -> dict[_Key, float]:
    raw = await redis.hgetall(key(prefix))
    totals: dict[_Key, float] = {}
    for field_, value in raw.items():
        name, part, *values = json.loads(field_)
        totals[(name, part, tuple(values))] = float(value)
    return totals


class TotalsCollector(Collector):
    """Every declared counter and histogram (empty ones too: a scrape names them all)."""

    def __init__(self, totals: Mapping[_Key, float]) -> None:
        self._by_name: dict[str, dict[tuple[str, Labels], float]] = {}
        for (name, part, values), value in totals.items():
            self._by_name.setdefault(name, {})[(part, values)] = value

    def collect(self) -> Iterator[Metric]:
        for declared in DECLARED:
            samples = self._by_name.get(declared.name, {})
            yield declared.family(_well_formed(samples, len(declared.labels)))


def _well_formed(
    samples: Mapping[tuple[str, Labels], float], labels: int
) -> dict[tuple[str, Labels], float]:
    """Fields written by another version with other labels are left out, not fatal."""
    return {k: v for k, v in samples.items() if len(k[1]) == labels}
