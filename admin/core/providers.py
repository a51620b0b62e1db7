"""The providers page's figures and route editor rows, from what the gateway reports. Pure.

Inputs are the gateway's own answers: ``GET /v1/providers`` (pool state summed over the
dispatch processes; counters since those processes started), ``GET /v1/providers/delivery``
(outcomes of recent messages) and ``GET /v1/admin/routing`` (the routes in force, the
providers disabled). Rates are shares of attempts, None when there were none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SELECTORS = ("prefixes", "countries", "operators")
CLASSES = ("otp", "transactional", "bulk")


@dataclass(frozen=True, slots=True)
class ProviderView:
    name: str
    kind: str
    ready: bool
    disabled: bool
    binds_up: int
    binds_total: int
    submitted_per_s: int  # parts submitted over the last second, all processes
    in_flight: int
    window_max: int
    submitted: int
    error_rate: float | None
    throttle_rate: float | None
    delivery_rate: float | None  # delivered / receipts of recent messages
    median_delivery_s: float | None
    gate: str  # the circuit breaker: closed, probe, open


@dataclass(frozen=True, slots=True)
class RouteRow:
    """One route as the editor's row shows it: one selector kind, values comma-joined."""

    provider: str
    selector: str
    values: str
    price_per_part: str
    classes: tuple[str, ...]
    weight: int
    extra: Mapping[str, Any]  # keys the row form does not edit (senders...), kept as they are


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def provider_views(
    configured: Sequence[Mapping[str, Any]],
    delivery: Mapping[str, Mapping[str, Any]],
    disabled: Sequence[str],
) -> list[ProviderView]:
    return [_view(item, delivery.get(str(item["name"]), {}), disabled) for item in configured]


def _view(
    item: Mapping[str, Any], delivery: Mapping[str, Any], disabled: Sequence[str]
) -> ProviderView:
    submitted, errors, throttled = (
        int(item.get(k, 0)) for k in ("submitted", "errors", "throttled")
    )
    attempts = submitted + errors + throttled
    return ProviderView(
        name=str(item["name"]),
        kind=str(item.get("kind", "")),
        ready=bool(item.get("ready")),
        disabled=item["name"] in disabled,
        binds_up=int(item.get("binds_up", 0)),
        binds_total=int(item.get("binds_total", 0)),
        submitted_per_s=int(item.get("tps_used", 0)),
        in_flight=int(item.get("in_flight", 0)),
        window_max=int(item.get("window_max", 0)),
        submitted=submitted,
        error_rate=share(errors, attempts),
        throttle_rate=share(throttled, attempts),
        delivery_rate=delivery.get("delivery_rate"),
        median_delivery_s=delivery.get("median_delivery_s"),
        gate=str(item.get("gate", "closed")),
    )


def route_rows(document: Mapping[str, Any]) -> list[RouteRow]:
    return [_row(route) for route in document.get("routes", [])]


def _row(route: Mapping[str, Any]) -> RouteRow:
    # Operators first: the countries that may restrict them stay in ``extra``.
    selector = next((s for s in ("operators", "prefixes", "countries") if route.get(s)), "prefixes")
    edited = {"provider", selector, "price_per_part", "classes", "weight"}
    return RouteRow(
        provider=str(route.get("provider", "")),
        selector=selector,
        values=", ".join(str(v) for v in route.get(selector, [])),
        price_per_part=str(route.get("price_per_part", "")),
        classes=tuple(route.get("classes", CLASSES)),
        weight=int(route.get("weight", 1)),
        extra={k: v for k, v in route.items() if k not in edited},
    )


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"
