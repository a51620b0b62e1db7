"""Prometheus metrics: declared in ``families`` (counters, histograms), ``gauges`` and
``pool`` (read at scrape time); summed over every process in Redis (``recorder``), so
any process's ``/metrics`` answers for the whole deployment. See docs/operations.md."""

from gateway.metrics import families
from gateway.metrics.gauges import GaugesCollector, Readings, clear_campaign, set_campaign
from gateway.metrics.pool import OtpCollector, PoolCollector, render
from gateway.metrics.recorder import TotalsCollector, flush

__all__ = [
    "GaugesCollector",
    "OtpCollector",
    "PoolCollector",
    "Readings",
    "TotalsCollector",
    "clear_campaign",
    "families",
    "flush",
    "render",
    "set_campaign",
]
