"""Decisions, rates and quotes as JSON-able dicts (POST /v1/routes/simulate, GET /v1/rates).

Money goes out as strings ("0.35"), never floats, so that a client reads back exactly
the price that was configured. Absent values are left out rather than sent as null.
"""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal
from typing import Any

from routing.choose import Decision
from routing.destinations import Destination
from routing.pricing import Quote, Rate
from routing.table import Considered


def decision_to_dict(decision: Decision) -> dict[str, Any]:
    return _json(
        {
            "outcome": decision.outcome,
            "reason": decision.reason,
            "routable": decision.routable,
            "destination": destination_to_dict(decision.destination),
            "provider": decision.provider,
            "route": decision.route,
            "price_per_part": decision.price_per_part,
            "total": decision.total,
            "sender": decision.sender,
            "probe": decision.probe or None,
            "considered": [considered_to_dict(c) for c in decision.considered],
        }
    )


def destination_to_dict(destination: Destination) -> dict[str, Any]:
    return _json(
        {
            "number": destination.number,
            "country": destination.country,
            "operator": destination.operator,
            "ported": destination.ported or None,
        }
    )


def considered_to_dict(considered: Considered) -> dict[str, Any]:
    return _json(asdict(considered))


def rates_to_list(rates: tuple[Rate, ...]) -> list[dict[str, Any]]:
    return [_json({**asdict(r), "classes": list(r.classes)}) for r in rates]


def quote_to_dict(quote: Quote) -> dict[str, Any]:
    return _json(asdict(quote))


def _json(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in fields.items() if v is not None}
