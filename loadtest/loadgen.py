"""A lean HTTP load generator: batches of messages, N concurrent senders, bounded count."""

from __future__ import annotations

import asyncio
import functools
import json
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

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


# -- the benchmark runner's load: prepared bodies, closed or open loop -----------------------

RETRYABLE = (429, 503)


@dataclass(frozen=True)
class Pace:
    """Closed loop (``rate`` None): ``concurrency`` clients, each sending its next request
    when the last is answered. Open loop: request i starts at i / ``rate`` whatever the
    answers, with at most ``concurrency`` in flight; its latency counts from its scheduled
    start, so a gateway that falls behind is not flattered (no coordinated omission)."""

    concurrency: int
    rate: float | None = None  # requests per second


@dataclass
class Tally(LoadResult):
    """A LoadResult that also counts retried refusals and requests that started late.

    ``answer_ms``: each request's time from leaving the generator to its answer, without
    the time it waited for its scheduled start to find a free connection (open loop)."""

    retries: dict[str, int] = field(default_factory=dict)
    late: int = 0
    answer_ms: list[float] = field(default_factory=list)


async def drive(
    http: LeanClient,
    path: str,
    bodies: Iterator[tuple[bytes, int]],
    pace: Pace,
    stop: asyncio.Event | None = None,
) -> Tally:
    """POST every prepared body (and the number of messages it holds) to ``path``."""
    tally, stop = Tally(), stop or asyncio.Event()
    if pace.rate is None:
        workers = (_closed(http, path, bodies, tally, stop) for _ in range(pace.concurrency))
        await asyncio.gather(*workers)
    else:
        await _open(http, path, bodies, pace, tally, stop)
    tally.finished = time.monotonic()
    return tally


async def _closed(
    http: LeanClient,
    path: str,
    bodies: Iterator[tuple[bytes, int]],
    tally: Tally,
    stop: asyncio.Event,
) -> None:
    for body, n in bodies:
        await _post_body(http, path, body, n, tally, time.monotonic())
        if stop.is_set():
            return


async def _open(
    http: LeanClient,
    path: str,
    bodies: Iterator[tuple[bytes, int]],
    pace: Pace,
    tally: Tally,
    stop: asyncio.Event,
) -> None:
    assert pace.rate is not None
    slots, tasks = asyncio.Semaphore(pace.concurrency), set[asyncio.Task[None]]()
    for i, (body, n) in enumerate(bodies):
        due = tally.started + i / pace.rate
        if (delay := due - time.monotonic()) > 0:
            await asyncio.sleep(delay)  # pacing: the schedule is the point
        if stop.is_set():
            break
        if slots.locked():
            tally.late += 1
        await slots.acquire()
        task = asyncio.create_task(_post_body(http, path, body, n, tally, due))
        task.add_done_callback(functools.partial(_finished, slots, tasks))
        tasks.add(task)
    await asyncio.gather(*tasks)


def _finished(
    slots: asyncio.Semaphore, tasks: set[asyncio.Task[None]], task: asyncio.Task[None]
) -> None:
    slots.release()
    tasks.discard(task)


async def _post_body(
    http: LeanClient, path: str, body: bytes, n: int, tally: Tally, started: float
) -> None:
    sent = time.monotonic()
    for attempt in range(50):
        try:
            status, raw = await http.post(path, body)
        except OSError as exc:
            _bump(tally.errors, type(exc).__name__, n)
            return
        if status not in RETRYABLE:
            now = time.monotonic()
            tally.latencies_ms.append((now - started) * 1000)
            tally.answer_ms.append((now - sent) * 1000)
            _count(tally, status, raw, n)
            return
        _bump(tally.retries, f"HTTP {status}", 1)
        await asyncio.sleep(min(2.0, 0.05 * (attempt + 1)))  # the refusal's backoff
    _bump(tally.errors, "gave up after 50 refusals", n)


def _count(tally: Tally, status: int, raw: bytes, n: int) -> None:
    if status != 202:
        _bump(tally.errors, f"HTTP {status}", n)
    elif n == 1:
        tally.accepted += 1
    else:
        reply = json.loads(raw)
        tally.accepted += len(reply["accepted"])
        if reply["rejected"]:
            _bump(tally.errors, "rejected in a batch", len(reply["rejected"]))


def _bump(counts: dict[str, int], key: str, n: int) -> None:
    counts[key] = counts.get(key, 0) + n


# -- a lean HTTP/1.1 client: the load generator must not be the bottleneck it measures ------


class _Connection(asyncio.Protocol):
    """One kept-alive connection, one request at a time. aiohttp's client costs a few
    hundred µs a request; this one sends a prepared head and reads the status line,
    Content-Length and the body, nothing else."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.reusable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError("the server closed the connection"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        head = bytes(self.buffer[:end]).lower()
        found = _CONTENT_LENGTH.search(head)
        size = int(found.group(1)) if found else 0
        if len(self.buffer) < end + 4 + size:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + size])
        del self.buffer[: end + 4 + size]
        self.reusable = found is not None and b"\r\nconnection: close" not in head
        self.waiter.set_result((int(head[9:12]), body))

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        if self.transport.is_closing():  # uvloop raises RuntimeError on a write
            raise ConnectionResetError("the connection was closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)")


class LeanClient:
    """POSTs with a fixed set of headers over at most ``limit`` kept-alive connections."""

    def __init__(self, host: str, port: int, headers: dict[str, str], limit: int) -> None:
        self.host, self.port = host, port
        fixed = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = f"Host: {host}:{port}\r\nContent-Type: application/json\r\n{fixed}"
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(limit)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        request = (
            f"POST {path} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        async with self._slots:
            conn = await self._connection()
            try:
                answer = await conn.exchange(request)
            except BaseException:
                conn.reusable = False
                raise
            finally:
                self._give_back(conn)
        return answer

    async def _connection(self) -> _Connection:
        """The connection used last (LIFO keeps few warm), or a new one. One idle longer
        than the server's keep-alive was closed by it: dropped here, not written to."""
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable:
                return conn
            self._give_back(conn)
        return await self._open()

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Connection, self.host, self.port)
        return conn

    def _give_back(self, conn: _Connection) -> None:
        if conn.reusable:
            self._idle.append(conn)
        elif conn.transport is not None:
            conn.transport.close()

    def close(self) -> None:
        for conn in self._idle:
            if conn.transport is not None:
                conn.transport.close()
        self._idle.clear()
