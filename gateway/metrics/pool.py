"""Provider pool families (binds, windows, provider counters, breaker) and OTP refusals.

Pool state lives in Redis (``adapters/pool_state``), summed over every dispatch process,
so any process answering ``/metrics`` reports the same provider figures: the scrape reads
Redis, then renders these families through prometheus-client (never hand-written text).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_GAUGES = (
    ("binds_up", "SMPP binds (or HTTP clients) up"),
    ("binds_total", "binds configured"),
    ("in_flight", "submissions awaiting the provider's answer"),
    ("window", "sum of the current (adaptive) windows of the binds that are up"),
    ("window_max", "sum of the configured windows"),
    ("tps_used", "parts submitted over the last second"),
)
_COUNTERS = (
    ("submitted", "parts the provider accepted"),
    ("throttled", "throttling answers (ESME_RTHROTTLED, ESME_RMSGQFUL, HTTP 429)"),
    ("errors", "other failed submissions"),
    ("malformed_pdus", "PDUs from the provider that could not be read (SMPP: session closed)"),
)
_GATES = ("closed", "probe", "open")
_EXPORTED = {"binds_total": "binds_configured"}  # a gauge must not end in _total


class PoolCollector(Collector):
    def __init__(self, live: Mapping[str, Mapping[str, Any]]) -> None:
        self._live = live

    def collect(self) -> Iterator[Metric]:
        for field, doc in _GAUGES:
            yield _family(GaugeMetricFamily, field, doc, self._live)
        for field, doc in _COUNTERS:
            yield _family(CounterMetricFamily, field, doc, self._live)
        ready = GaugeMetricFamily(
            "smsgw_provider_ready", "1 when a bind is up", labels=["provider"]
        )
        breaker = GaugeMetricFamily(
            "smsgw_provider_breaker", "1 for the breaker's gate", labels=["provider", "gate"]
        )
        for name, item in self._live.items():
            ready.add_metric([name], float(bool(item.get("ready"))))
            for gate in _GATES:
                breaker.add_metric([name, gate], float(item.get("gate", "closed") == gate))
        yield ready
        yield breaker


def _family(kind: Any, field: str, doc: str, live: Mapping[str, Mapping[str, Any]]) -> Metric:
    family = kind(f"smsgw_provider_{_EXPORTED.get(field, field)}", doc, labels=["provider"])
    for name, item in live.items():
        family.add_metric([name], float(item.get(field, 0)))
    return family  # type: ignore[no-any-return]


class OtpCollector(Collector):
    """OTP sends refused by the pumping counters, over every process (kept in Redis)."""

    def __init__(self, blocked: Mapping[tuple[str, str], int]) -> None:
        self._blocked = blocked

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "smsgw_otp_blocked",
            "OTP sends refused by a pumping counter",
            labels=["reason", "country"],
        )
        for (reason, country), count in sorted(self._blocked.items()):
            family.add_metric([reason, country], float(count))
        yield family


def render(collectors: Iterable[Collector]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)
