"""Routing: which provider carries a message, at what price, and why (pure; no IO).

    load_table(toml, providers) -> RouteTable           config.py: [[routes]] + [routing]
    choose(RouteRequest, RouteTable, {provider: ProviderState}) -> Decision   choose.py
    rates(table, number, klass) / quote(table, number, parts, klass)         pricing.py
    Breaker.record(outcome, now, settings) / .gate(now, settings)            health.py
    decision_to_dict(decision), rates_to_list(rates), quote_to_dict(quote)   explain.py

Imports nothing of ours above it and no IO library; the gateway feeds it live state
(windows, tokens, breaker gates) and acts on the decision.
"""

from routing.choose import Decision, ProviderState, RouteRequest, choose
from routing.config import RouteConfigError, load_table
from routing.destinations import Destination, Resolver, operator_key
from routing.explain import decision_to_dict, quote_to_dict, rates_to_list
from routing.health import Breaker, BreakerTransitionError, Gate, Outcome, gates
from routing.pricing import Quote, Rate, quote, rates, total
from routing.table import (
    CLASSES,
    BreakerSettings,
    Considered,
    Policy,
    RouteEntry,
    RouteTable,
    Verdict,
)

__all__ = [
    "CLASSES",
    "Breaker",
    "BreakerSettings",
    "BreakerTransitionError",
    "Considered",
    "Decision",
    "Destination",
    "Gate",
    "Outcome",
    "Policy",
    "ProviderState",
    "Quote",
    "Rate",
    "Resolver",
    "RouteConfigError",
    "RouteEntry",
    "RouteRequest",
    "RouteTable",
    "Verdict",
    "choose",
    "decision_to_dict",
    "gates",
    "load_table",
    "operator_key",
    "quote",
    "quote_to_dict",
    "rates",
    "rates_to_list",
    "total",
]
