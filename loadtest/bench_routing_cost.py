"""Benchmark: what smart routing saves. One load, two runs: the route table, then one provider.

    python -m loadtest.bench_routing_cost                      # 100,000 messages per run
    python -m loadtest.bench_routing_cost --count 20000 --tps-scale 2

Three SMSC simulators run in this process (the same ones for both runs); the gateway is a
real ``smsgw run`` child, with embedded (or the given DATABASE_URL / REDIS_URL) servers.
Its settings are ``examples/smsgw.toml`` (``--config``) with the providers pointed at the
simulators: first with every provider and every [[routes]] entry ("smart": operators,
prefixes, countries, TPS spill-over, bulk waiting for its cheapest route), then with one
provider alone (``--single``, the catch-all wholesaler "dear" by default) at its own rate
card, as a gateway without routing would send everything through its default route.

The load is the same in both runs (seeded): Russian mobile operators in their market
shares, other Russian numbers, the CIS and some foreign numbers; short texts and long
Cyrillic ones (2–3 parts); OTP, transactional and bulk. Each run reports the total cost
(the sum of ``messages.price``), the split per provider, and its times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import aiopg

from gateway.adapters import client_store, pg
from gateway.core.numbers import InvalidNumber, to_e164
from gateway.embedded import free_port, servers
from loadtest.processes import spawn, wait_for_http
from loadtest.smsc import SmscConfig, SmscSimulator

# (share of the load, E.164 prefixes): Russian operators in their market shares
DESTINATIONS: tuple[tuple[float, tuple[str, ...]], ...] = (
    (0.27, ("+7910", "+7911", "+7915", "+7916", "+7917", "+7919", "+7987")),  # MTS
    (0.25, ("+7920", "+7921", "+7925", "+7926", "+7929", "+7999")),  # MegaFon
    (0.19, ("+7903", "+7905", "+7906", "+7909", "+7960", "+7962", "+7965")),  # Beeline
    (0.17, ("+7950", "+7951", "+7952", "+7953", "+7977")),  # T2
    (0.04, ("+7495", "+7812", "+7985")),  # other Russian numbers
    (0.06, ("+7701", "+7777", "+37529", "+99890", "+996555", "+37491")),  # the CIS
    (0.02, ("+49151", "+1202", "+90532", "+447400")),  # foreign
)
DIGITS = {"+7": 11, "+375": 12, "+998": 12, "+996": 12, "+374": 11, "+49": 13, "+1": 11}
DIGITS |= {"+90": 12, "+44": 12}  # E.164 digits of a mobile number, by calling code
SHORT = (
    "Your code is {n}. Do not share it.",
    "Ваш код подтверждения: {n}. Никому его не сообщайте.",
    "Заказ №{n} передан в доставку.",
)
LONG = (
    "Уважаемый клиент! Напоминаем, что по договору №{n} платёж необходимо внести до 25 числа. "
    "Оплатить можно в личном кабинете или в любом отделении банка. Спасибо, что вы с нами!",
    "Здравствуйте! Ваш заказ №{n} собран и передан в службу доставки. Курьер позвонит за час "
    "до приезда. Изменить время или адрес доставки можно в личном кабинете на сайте или в "
    "мобильном приложении магазина. Спасибо за покупку!",
)
CLASSES = ("otp", "transactional", "bulk")
CLASS_SHARES = (0.15, 0.45, 0.40)

SPLIT_SQL = """
SELECT coalesce(provider, '(none)'), count(*), sum(parts), coalesce(sum(price), 0)
FROM messages WHERE client_id = %s GROUP BY 1 ORDER BY 4 DESC
"""
TIMES_SQL = """
SELECT count(*) FILTER (WHERE state >= 40), count(*) FILTER (WHERE state <> 41),
       extract(epoch FROM max(accepted_at) - min(accepted_at)),
       extract(epoch FROM max(done_at) - min(accepted_at))
FROM messages WHERE client_id = %s
"""


# --- the load ----------------------------------------------------------------------------
def destinations(rng: random.Random) -> Iterator[str]:
    shares = [share for share, _ in DESTINATIONS]
    while True:
        prefix = rng.choice(rng.choices(DESTINATIONS, shares)[0][1])
        length = next(n for code, n in DIGITS.items() if prefix.startswith(code))
        number = prefix + "".join(rng.choices("0123456789", k=length + 1 - len(prefix)))
        try:
            yield to_e164(number, "RU")
        except InvalidNumber:
            continue  # a range the numbering plan leaves unallocated: draw again


def messages(count: int, seed: int = 11) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    numbers = destinations(rng)
    for _ in range(count):
        texts = LONG if rng.random() < 0.3 else SHORT
        yield {
            "to": next(numbers),
            "text": rng.choice(texts).format(n=rng.randrange(100000, 999999)),
            "priority": rng.choices(CLASSES, CLASS_SHARES)[0],
            "from": "MyShop",
        }


async def post_all(base: str, api_key: str, count: int, concurrency: int = 4) -> int:
    """POST the load in batches of 500 from a few workers; the number accepted."""
    source = messages(count)
    accepted = 0

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal accepted
        while chunk := [m for _, m in zip(range(500), source, strict=False)]:
            taken = await _post(http, chunk)  # not ``accepted += await``: it reads first
            accepted += taken

    headers = {"Authorization": f"Bearer {api_key}"}
    async with aiohttp.ClientSession(base, headers=headers) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return accepted


async def _post(http: aiohttp.ClientSession, chunk: list[dict[str, Any]]) -> int:
    for attempt in range(100):
        async with http.post("/v1/messages/batch", json={"messages": chunk}) as response:
            body = await response.json()
        if response.status not in (429, 503):  # 429/503: backpressure, come back later
            if response.status != 202:
                raise RuntimeError(f"HTTP {response.status}: {body}")
            return len(body["accepted"])
        await asyncio.sleep(min(2.0, 0.05 * (attempt + 1)))
    raise RuntimeError("the gateway kept answering 429/503")


# --- the gateway's settings --------------------------------------------------------------
def settings_for(
    example: Mapping[str, Any],
    ports: Mapping[str, int],
    http_port: int,
    single: str | None,
    tps_scale: float,
) -> dict[str, Any]:
    """The example's settings with its providers on the simulators; ``single``: that one."""
    keep = [p for p in example["providers"] if single in (None, p["name"])]
    providers = [_on_simulator(p, ports[p["name"]], tps_scale) for p in keep]
    routes = [r for r in example.get("routes", []) if single in (None, r["provider"])]
    return {
        **example,
        "log_level": "WARNING",
        "data_dir": tempfile.mkdtemp(prefix="sgc", dir="/tmp"),
        "http": {**example.get("http", {}), "port": http_port},
        "providers": providers,
        "routes": routes,
    }


def _on_simulator(provider: Mapping[str, Any], port: int, tps_scale: float) -> dict[str, Any]:
    moved = {**provider, "host": "127.0.0.1", "port": port}
    if "tps" in provider:
        moved["tps"] = provider["tps"] * tps_scale
    return moved


def to_toml(data: Mapping[str, Any], path: str = "") -> str:
    """The subset of TOML settings use: scalars, lists, tables and arrays of tables."""
    nested = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    arrays = {k: v for k, v in data.items() if _is_table_array(v)}
    lines = [f"{k} = {_value(v)}" for k, v in data.items() if k not in nested | arrays]
    for key, table in nested.items():
        lines += ["", f"[{path}{key}]", to_toml(table, f"{path}{key}.")]
    for key, items in arrays.items():
        for item in items:
            lines += ["", f"[[{path}{key}]]", to_toml(item, f"{path}{key}.")]
    return "\n".join(lines)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], Mapping)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


# --- a run -------------------------------------------------------------------------------
@dataclass
class Run:
    label: str
    accepted: int
    split: list[tuple[str, int, int, Decimal]]  # provider, messages, parts, cost
    not_delivered: int
    accept_s: float
    total_s: float

    @property
    def cost(self) -> Decimal:
        return sum((cost for *_, cost in self.split), Decimal(0))


async def run_once(
    label: str, settings: dict[str, Any], database_url: str, redis_url: str, count: int
) -> Run:
    work = Path(settings["data_dir"])
    (work / "gw.toml").write_text(to_toml(settings) + "\n")
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    argv = ["-m", "smsgw.cli", "--config", str(work / "gw.toml"), "run"]
    gateway = spawn("gateway", argv, work, env)
    base = f"http://127.0.0.1:{settings['http']['port']}"
    try:
        await asyncio.to_thread(wait_for_http, gateway, f"{base}/v1/ready")
        async with pg.open_pool(database_url, 2) as pool:
            client = await client_store.create(pool, f"cost-{label}-{time.time_ns()}")
            accepted = await post_all(base, client.api_key, count)
            print(f"{label}: accepted {accepted:,}; waiting for every outcome", flush=True)
            await _until_final(pool, client.client.id, accepted)
            return await _measure(pool, label, client.client.id, accepted)
    finally:
        await asyncio.to_thread(gateway.stop, 30.0)


async def _until_final(pool: aiopg.Pool, client_id: int, accepted: int) -> None:
    """Sample progress every 2 s (a benchmark watches the store; nothing to await)."""
    sql = "SELECT count(*) FROM messages WHERE client_id = %s AND state >= 40"
    last, stalled = -1, 0
    while (done := int((await pg.fetch(pool, sql, (client_id,)))[0][0])) < accepted:
        stalled = stalled + 1 if done == last else 0
        if stalled > 60:
            print(f"no progress for 2 minutes at {done:,}; measuring what there is")
            return
        last = done
        await asyncio.sleep(2.0)


async def _measure(pool: aiopg.Pool, label: str, client_id: int, accepted: int) -> Run:
    rows = await pg.fetch(pool, SPLIT_SQL, (client_id,))
    split = [(p, int(n), int(parts), Decimal(cost)) for p, n, parts, cost in rows]
    _, not_delivered, accept_s, total_s = (await pg.fetch(pool, TIMES_SQL, (client_id,)))[0]
    return Run(label, accepted, split, int(not_delivered), float(accept_s), float(total_s))


def report(runs: list[Run]) -> None:
    for run in runs:
        print(f"\n== {run.label}: {run.accepted:,} messages, total cost {run.cost:,.2f} ==")
        rate = run.accepted / run.total_s
        print(f"accepted in {run.accept_s:.1f} s; every outcome in {run.total_s:.1f} s", end=" ")
        print(f"({rate:,.0f} messages/s); not delivered: {run.not_delivered}")
        for provider, n, parts, cost in run.split:
            share = cost / run.cost * 100 if run.cost else Decimal(0)
            line = f"{n:>9,} messages {parts:>9,} parts {cost:>13,.2f}"
            print(f"  {provider:<8}{line} ({share:.1f}%)")
    smart, single = runs
    saved = single.cost - smart.cost
    print(f"\nsmart routing costs {smart.cost:,.2f} against {single.cost:,.2f}:", end=" ")
    print(f"{saved:,.2f} less ({saved / single.cost * 100:.1f}%)")


async def bench(args: argparse.Namespace, database_url: str, redis_url: str) -> list[Run]:
    example = tomllib.loads(args.config.read_text())
    names = [p["name"] for p in example["providers"]]
    sims = {name: SmscSimulator(SmscConfig(port=0, receipt_delay=0.05)) for name in names}
    for sim in sims.values():
        await sim.start()
    try:
        ports = {name: sim.port for name, sim in sims.items()}
        runs = []
        for label, single in (("smart routing", None), (f"all through {args.single}", args.single)):
            settings = settings_for(example, ports, free_port(), single, args.tps_scale)
            runs.append(await run_once(label, settings, database_url, redis_url, args.count))
        return runs
    finally:
        for sim in sims.values():
            await sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="messages per run")
    parser.add_argument("--config", type=Path, default=Path("examples/smsgw.toml"))
    parser.add_argument("--single", default="dear", help="the provider of the baseline run")
    parser.add_argument("--tps-scale", type=float, default=1.0, help="multiplies every tps")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="sgc", dir="/tmp"))
    env = os.environ
    with servers(data_dir, env.get("DATABASE_URL"), env.get("REDIS_URL")) as urls:
        started = time.monotonic()
        runs = asyncio.run(bench(args, urls.database_url, urls.redis_url))
    report(runs)
    print(f"(both runs: {time.monotonic() - started:.0f} s; --count {args.count})")


if __name__ == "__main__":
    main()
