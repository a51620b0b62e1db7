"""Micro-benchmark: choose() decisions per second on a realistic table.

    python -m routing._bench [decisions]

Five providers (four Russian operators' direct links and an aggregator), 36 entries
(operators, prefixes, countries, a catch-all), 20,000 distinct numbers over the Russian
mobile ranges plus CIS and foreign ones, all classes, some providers saturated or with
an open breaker. The first pass warms the per-range memos, as a running dispatcher has.
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any

from routing.choose import ProviderState, RouteRequest, choose
from routing.config import load_table
from routing.table import CLASSES, RouteTable

PROVIDERS = ("mts", "beeline", "megafon", "t2", "smsaero")


def config() -> dict[str, Any]:
    routes: list[dict[str, Any]] = []
    for name, price in (("mts", "0.30"), ("beeline", "0.31"), ("megafon", "0.29"), ("t2", "0.28")):
        routes.append({"provider": name, "operators": [name], "countries": ["RU"],
                       "price_per_part": price})  # fmt: skip
        routes.append({"provider": name, "countries": ["RU"], "price_per_part": "0.55",
                       "classes": ["transactional", "bulk"],
                       "numeric_sender": "79000000000"})  # fmt: skip
    for operator, price in (("mts", "0.33"), ("beeline", "0.33"), ("megafon", "0.32"),
                            ("t2", "0.31"), ("motiv", "0.40"), ("mtt", "0.45")):  # fmt: skip
        routes.append({"provider": "smsaero", "operators": [operator], "countries": ["RU"],
                       "price_per_part": price})  # fmt: skip
    routes.append({"provider": "smsaero", "countries": ["RU"], "price_per_part": "0.50"})
    cis = ("+375", "+3752", "+77", "+770", "+998", "+996", "+992",
           "+374", "+995", "+994", "+373", "+380", "+371", "+372")  # fmt: skip
    for i, prefix in enumerate(cis):
        routes.append({"provider": "smsaero", "prefixes": [prefix],
                       "price_per_part": f"{2 + i * 0.25:.2f}"})  # fmt: skip
    routes.append({"provider": "smsaero", "countries": ["*"], "price_per_part": "5.00"})
    routes.append({"provider": "beeline", "prefixes": ["+77"], "price_per_part": "2.10",
                   "weight": 2})  # fmt: skip
    routes.append({"provider": "mts", "prefixes": ["+375"], "price_per_part": "2.00"})
    return {
        "routing": {"ported": {"+79031234567": "MTS"}},
        "routes": routes,
    }


def numbers(count: int, rng: random.Random) -> list[str]:
    ru = ["900", "901", "902", "903", "905", "908", "910", "915", "916", "921", "925", "926",
          "950", "952", "958", "960", "965", "977", "980", "985", "991", "999"]  # fmt: skip
    foreign = ["+37529", "+77017", "+99890", "+38067", "+4915", "+1202"]
    out = []
    for _ in range(count):
        if rng.random() < 0.9:
            out.append(f"+7{rng.choice(ru)}{rng.randrange(10**7):07d}")
        else:
            out.append(f"{rng.choice(foreign)}{rng.randrange(10**7):07d}")
    return out


def run(decisions: int) -> float:
    table: RouteTable = load_table(config(), PROVIDERS)
    rng = random.Random(7)
    pool = numbers(20_000, rng)
    state = {
        "mts": ProviderState(tokens=100, window_room=50),
        "beeline": ProviderState(tokens=0, window_room=50),
        "megafon": ProviderState(tokens=100, window_room=0),
        "t2": ProviderState(gate="open"),
        "smsaero": ProviderState(tokens=500, window_room=400),
    }
    senders = ("ACME", "79161234567")
    requests = [
        RouteRequest(i, pool[i % len(pool)], 1 + i % 3, CLASSES[i % 3], senders[i % 2])
        for i in range(decisions)
    ]
    for request in requests[: len(pool)]:
        choose(request, table, state)  # warm the memos
    started = time.perf_counter()
    for request in requests:
        choose(request, table, state)
    return decisions / (time.perf_counter() - started)


def main() -> None:
    decisions = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    print(f"choose(): {run(decisions):,.0f} decisions/s ({len(config()['routes'])} entries)")


if __name__ == "__main__":
    main()
