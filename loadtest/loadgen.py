"""A lean HTTP load generator: batches of messages, N concurrent senders, bounded count."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

TEXTS = (
    "Your code is {n}. Do not share it.",
    "Ваш код подтверждения: {n}. Никому его не сообщайте.",
    "Заказ №{n} передан в доставку. Отследить: https://example.ru/t/{n}",
    "Order {n} has shipped and will arrive tomorrow between 10:00 and 14:00.",
    "Уважаемый клиент! Напоминаем, что по договору №{n} платёж необходимо внести до 25 числа. "
    "Оплатить можно в личном кабинете или в любом отделении банка. Спасибо, что вы с нами!",
)
PRIORITIES = ("otp", "transactional", "bulk", "bulk")
MOBILE_CODES = ("903", "905", "909", "911", "915", "916", "921", "926", "929", "950", "977", "985")


def messages(count: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    """Russian mobile numbers, a mix of GSM-7 and Cyrillic texts (some of two parts)."""
    rng = random.Random(seed)
    for _ in range(count):
        yield {
            "to": f"+7{rng.choice(MOBILE_CODES)}{rng.randrange(10**7):07d}",
            "text": rng.choice(TEXTS).format(n=rng.randrange(100000, 999999)),
            "priority": rng.choice(PRIORITIES),
            "from": "smsgw",
        }


@dataclass
class LoadResult:
    accepted: int = 0
    rejected: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    finished: float = 0.0

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started


async def send(
    base_url: str,
    api_key: str,
    count: int,
    batch: int = 500,
    concurrency: int = 8,
    progress: Callable[[LoadResult], None] | None = None,
) -> LoadResult:
    """POST ``count`` messages in batches; retries a batch the gateway answered 503/429 to."""
    result = LoadResult()
    source = messages(count)
    headers = {"Authorization": f"Bearer {api_key}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url, headers=headers, connector=connector) as http:
        workers = [_worker(http, source, batch, result, progress) for _ in range(concurrency)]
        await asyncio.gather(*workers)
    result.finished = time.monotonic()
    return result


async def _worker(
    http: aiohttp.ClientSession,
    source: Iterator[dict[str, Any]],
    size: int,
    result: LoadResult,
    progress: Callable[[LoadResult], None] | None,
) -> None:
    while chunk := [m for _, m in zip(range(size), source, strict=False)]:
        await _post(http, chunk, result)
        if progress:
            progress(result)


async def _post(
    http: aiohttp.ClientSession, chunk: list[dict[str, Any]], result: LoadResult
) -> None:
    for attempt in range(50):
        started = time.monotonic()
        async with http.post("/v1/messages/batch", json={"messages": chunk}) as response:
            body = await response.json()
        if response.status in (429, 503):
            await asyncio.sleep(min(2.0, 0.05 * (attempt + 1)))
            continue
        result.latencies_ms.append((time.monotonic() - started) * 1000)
        if response.status == 202:
            result.accepted += len(body["accepted"])
            result.rejected += len(body["rejected"])
        else:
            key = f"HTTP {response.status}"
            result.errors[key] = result.errors.get(key, 0) + len(chunk)
        return
    result.errors["gave up"] = result.errors.get("gave up", 0) + len(chunk)
