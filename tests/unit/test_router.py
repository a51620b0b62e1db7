"""The dispatcher's router: live state into ``routing.choose``, outcomes into breakers.

Providers and limiters here are small fakes of our own components (their real
counterparts are tested over TCP); the router's logic is what is under test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.core.message import Outbound, Priority
from gateway.services.router import Router
from gateway.settings import from_mapping
from providers.base import Receipt, ReceiptStatus

ROUTES = {
    "providers": [
        {"name": n, "host": "127.0.0.1", "port": 1, "system_id": "x", "password": "y"}
        for n in ("cheap", "dear")
    ],
    "routes": [
        {"provider": "cheap", "prefixes": ["+7"], "price_per_part": "0.20"},
        {"provider": "dear", "prefixes": ["+7"], "price_per_part": "0.50"},
    ],
    "routing": {"breaker": {"min_events": 5, "min_receipts": 5, "cool_down_s": 10}},
}


@dataclass
class FakeProvider:
    ready: bool = True
    room: int = 10

    def capacity(self) -> int:
        return self.room


@dataclass
class FakeLimiter:
    rate: float = 100.0
    waiting: int = 0

    def backlog(self) -> int:
        return self.waiting


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def _router(**limiters: Any) -> tuple[Router, dict[str, FakeProvider], Clock]:
    settings = from_mapping(ROUTES)
    providers = {"cheap": FakeProvider(), "dear": FakeProvider()}
    clock = Clock()
    return Router(settings.routing, providers, limiters, clock), providers, clock  # type: ignore[arg-type]


def _message(priority: Priority = Priority.TRANSACTIONAL, parts: int = 1) -> Outbound:
    return Outbound(1, 1, "+79211234567", "Shop", "hi", priority, parts, 0, None)


def test_cheapest_first_then_the_next_when_it_failed() -> None:
    router, _, _ = _router()
    assert router.decide(_message()).provider == "cheap"
    assert router.decide(_message(), frozenset({"cheap"})).provider == "dear"


def test_errors_open_the_breaker_and_traffic_moves() -> None:
    router, _, clock = _router()
    for _ in range(5):
        router.record("cheap", "temporary_error")
    assert router.gates()["cheap"] == "open"
    assert router.decide(_message()).provider == "dear"
    clock.now += 11  # cooled down: one probe goes to the cheap route again
    probe = router.decide(_message())
    assert (probe.provider, probe.probe) == ("cheap", True)
    router.submitting(probe)
    router.record("cheap", "ok")
    assert router.gates()["cheap"] == "closed"


def test_probes_count_only_when_sent() -> None:
    """A decision that is deferred sends nothing: it must not use up the probes."""
    router, _, clock = _router()
    for _ in range(5):
        router.record("cheap", "temporary_error")
    assert router.gates()["cheap"] == "open"
    clock.now += 11
    for _ in range(10):
        assert router.decide(_message()).probe
    assert router.gates()["cheap"] == "probe"


def test_outcomes_reach_the_breaker_within_a_fold() -> None:
    """Counted outcomes are folded into the breaker once 0.1 s has passed, by a decision."""
    router, _, clock = _router()
    router.record("cheap", "ok")  # the first folds at once
    for _ in range(5):
        router.record("cheap", "temporary_error")
    assert router.breakers["cheap"].phase == "closed"  # still counted, not folded
    clock.now += 0.1
    assert router.decide(_message()).provider == "dear"
    assert router.breakers["cheap"].phase == "open"


def test_a_slow_limit_still_takes_long_messages() -> None:
    router, _, _ = _router(cheap=FakeLimiter(rate=5, waiting=0))
    assert router.decide(_message(parts=10)).provider == "cheap"


def test_undelivered_receipts_open_the_breaker() -> None:
    router, _, _ = _router()
    for _ in range(5):
        router.observe_receipt(Receipt("cheap", "id", ReceiptStatus.UNDELIVERABLE))
    assert router.gates()["cheap"] == "open"


def test_a_backlogged_limiter_spills_transactional_but_bulk_waits() -> None:
    router, _, _ = _router(cheap=FakeLimiter(rate=100, waiting=50))
    assert router.decide(_message()).provider == "dear"
    decision = router.decide(_message(Priority.BULK))
    assert (decision.outcome, decision.provider) == ("wait", "cheap")


def test_a_full_window_or_a_down_provider_spills() -> None:
    router, providers, _ = _router()
    providers["cheap"].room = 0
    assert router.decide(_message()).provider == "dear"
    providers["cheap"].room, providers["cheap"].ready = 10, False
    assert router.decide(_message()).provider == "dear"
