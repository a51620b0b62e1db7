"""The campaign runner: due campaigns, streamed through the gateway in chunks.

Theory of operation. ``run`` polls for a campaign that is due (scheduled, its time come)
or running without a live lease, takes it under ``FOR UPDATE SKIP LOCKED`` with a lease,
and drives it in a task of its own (a few at once). A run walks the audience once with one
keyset cursor per time zone: a chunk is the next contacts of one zone whose send window is
open, excluded in SQL when unsubscribed, without consent or over the frequency cap. The
zones closing soonest go first, a few at once (each has its own cursor; the campaign
row's UPDATEs serialise their records). Zones whose window is closed keep their cursor
and wait; the task sleeps until the next window opens (renewing its lease). No re-scan is
needed and a 1,000,000-contact audience is never in memory: a few chunks at a time.

A chunk is about a second of sending at the campaign's rate cap (a token bucket), so a
pause or cancel takes effect within a chunk: the state comes back with every record.
Each accepted message, its contact_sends row and the zone's cursor advance are committed
in one statement after the gateway answered. A runner killed between the two resends
the chunk with the same ``client_ref``s and the gateway hands back the same messages:
no contact is skipped and none gets two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import uuid
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiopg

from admin.adapters import audience_store, campaign_store, link_store, template_store
from admin.adapters.campaign_store import CampaignRow, Chunk, Lease
from admin.core import campaigns as core
from admin.core.audience import SqlWhere, compile_where
from admin.core.campaigns import Action, Compiled, State
from admin.core.links import LinkRow, new_code
from gateway.adapters import failures
from gateway.client import GatewayClient, Outgoing, RequestRefused
from gateway.core.ratelimit import TokenBucket

if TYPE_CHECKING:
    from admin.app import Admin

log = logging.getLogger("admin.campaigns")

Where = tuple[str, tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    poll_s: float = 1.0  # how often to look for due campaigns
    lease_s: float = 30.0  # a dead runner's campaign is taken over after this
    max_campaigns: int = 4  # driven at once by one process
    chunk_s: float = 1.0  # a chunk is this long at the rate cap: the pause latency
    zones_at_once: int = 3  # chunks of different zones in flight (their cursors are apart)
    margin: timedelta = timedelta(minutes=1)  # a window closing sooner is not started
    cooldown_s: float = 30.0  # after a campaign failed, before this process retries it


@dataclass
class _Run:
    """One run of one campaign, as its task drives it."""

    row: CampaignRow
    lease: Lease
    where: Where  # the audience, before the per-chunk exclusions
    variants: tuple[Compiled, ...]
    zones: list[str]
    cursors: dict[str, int]
    done: set[str]
    bucket: TokenBucket


async def run(admin: Admin, config: RunnerConfig = RunnerConfig()) -> None:
    """The background task: claim due campaigns and drive each in a task of its own."""
    if admin.gateway is None:
        log.warning("no gateway API key ([admin] gateway_api_key): campaigns will not run")
        return
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    active: dict[int, asyncio.Task[None]] = {}
    cooling: dict[int, float] = {}
    try:
        while True:
            failures.raise_if_cancelling()  # a cancel lost in aiopg's wait_for (Python 3.11)
            try:
                await _claim_more(admin, config, owner, active, cooling)
            except failures.TRANSIENT as exc:  # PostgreSQL restarting: look again later
                failures.raise_if_cancelling()
                log.warning("campaigns not claimed: %r", exc)
            await asyncio.sleep(config.poll_s)
    finally:
        for task in active.values():
            task.cancel()
        await asyncio.gather(*active.values(), return_exceptions=True)


async def _claim_more(
    admin: Admin,
    config: RunnerConfig,
    owner: str,
    active: dict[int, asyncio.Task[None]],
    cooling: dict[int, float],
) -> None:
    loop = asyncio.get_running_loop()
    for cid, task in list(active.items()):
        if task.done():
            del active[cid]
            if not task.cancelled() and task.exception() is not None:
                cooling[cid] = loop.time() + config.cooldown_s
    for cid in [c for c, until in cooling.items() if until < loop.time()]:
        del cooling[cid]
    while len(active) < config.max_campaigns:
        busy = [*active, *cooling]
        row = await campaign_store.claim(admin.pool, owner, config.lease_s, busy)
        if row is None:
            return
        active[row.id] = asyncio.create_task(_guarded(admin, config, owner, row))


async def _guarded(admin: Admin, config: RunnerConfig, owner: str, row: CampaignRow) -> None:
    try:
        await drive(admin, config, owner, row)
    except RequestRefused as exc:  # a bad key, no funds: resending cannot help, a person can
        log.error(
            "campaign %d paused: the gateway refused it (%d %s)", row.id, exc.status, exc.code
        )
        with contextlib.suppress(campaign_store.IllegalChange):
            await campaign_store.change(admin.pool, row.id, Action.PAUSE)
    except Exception:
        log.exception("campaign %d failed; retried in %g s", row.id, config.cooldown_s)
        raise
    finally:
        await _release(admin.pool, row.id, owner)


async def _release(pool: aiopg.Pool, campaign_id: int, owner: str) -> None:
    try:
        await campaign_store.release(pool, campaign_id, owner)
    except Exception as exc:  # the lease runs out by itself
        log.warning("campaign %d: lease not released: %r", campaign_id, exc)


async def drive(admin: Admin, config: RunnerConfig, owner: str, row: CampaignRow) -> None:
    """Run ``row`` (claimed by ``owner``) until it ends, pauses, or is cancelled."""
    if row.state is State.SCHEDULED:
        found = await _begin(admin.pool, owner, row)
        if found is None:
            return
        row = found
    current = await _prepare(admin, config, owner, row)
    state: State | None = State.RUNNING
    while state is State.RUNNING:
        failures.raise_if_cancelling()  # as in ``run``
        state = await _step(admin, config, current)
    log.info("campaign %d run %d: %s", row.id, row.run_id, state or "lease lost")


async def _begin(pool: aiopg.Pool, owner: str, row: CampaignRow) -> CampaignRow | None:
    where = await _audience_where(pool, row)
    total = await campaign_store.count(pool, _eligible(where, row))
    run_id = await campaign_store.begin_run(pool, row.id, owner, total)
    log.info("campaign %d: run %s begins, %d contacts", row.id, run_id, total)
    return await campaign_store.get(pool, row.id) if run_id is not None else None


async def _audience_where(pool: aiopg.Pool, row: CampaignRow) -> Where:
    audience = await audience_store.get_audience(pool, row.spec.audience_id)
    if audience is None:
        raise LookupError(f"campaign {row.id}: audience {row.spec.audience_id} is gone")
    where = compile_where(audience.query, datetime.now(UTC).date())
    return where.sql, where.params


def _eligible(where: Where, row: CampaignRow) -> Where:
    return campaign_store.eligible(*where, row.spec.cap, datetime.now(UTC))


async def _prepare(admin: Admin, config: RunnerConfig, owner: str, row: CampaignRow) -> _Run:
    where = await _audience_where(admin.pool, row)
    zones = await campaign_store.zones(admin.pool, _eligible(where, row))
    rate = row.spec.rate_per_s
    loop = asyncio.get_running_loop()
    return _Run(
        row=row,
        lease=campaign_store.lease_for(row, owner, config.lease_s),
        where=where,
        variants=tuple([await _compile(admin.pool, v) for v in row.spec.variants]),
        zones=sorted(zones),
        cursors=dict(row.cursors),
        done=set(row.zones_done),
        bucket=TokenBucket(rate, burst=core.chunk_size(rate, config.chunk_s), now=loop.time()),
    )


async def _compile(pool: aiopg.Pool, variant: core.Variant) -> Compiled:
    found = await template_store.get_template(pool, variant.template_id)
    if found is None:
        raise LookupError(f"template {variant.template_id} is gone")
    return core.compile_variant(
        variant, found.text, found.defaults, found.transliterate, found.track_links
    )


async def _step(admin: Admin, config: RunnerConfig, current: _Run) -> State | None:
    """A chunk of each of the open zones that close first, or a wait for the next window."""
    now = datetime.now(UTC)
    pending = [z for z in current.zones if z not in current.done]
    if not pending:
        upcoming = core.next_occurrence(current.row.spec.schedule, now)
        return await campaign_store.end_run(admin.pool, current.lease, upcoming)
    window = current.row.spec.window
    open_now = core.open_zones(window, now, pending, config.margin)
    if not open_now:
        return await _wait_for_window(admin.pool, config, current, pending, now)
    first = sorted(open_now, key=lambda z: core.closes_in(window, now, z) or timedelta.max)
    states = await _together(
        _chunk(admin, config, current, z, now) for z in first[: config.zones_at_once]
    )
    return next((s for s in states if s is not State.RUNNING), State.RUNNING)


async def _together(work: Iterable[Coroutine[Any, Any, State | None]]) -> list[State | None]:
    """Run chunks at once; one failing cancels the others and its error is raised as is."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(w) for w in work]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


async def _wait_for_window(
    pool: aiopg.Pool, config: RunnerConfig, current: _Run, pending: list[str], now: datetime
) -> State | None:
    state = await campaign_store.renew(pool, current.lease)
    opening = core.next_opening(current.row.spec.window, now + config.margin, pending)
    wait = (opening - now).total_seconds() if opening else config.lease_s
    await asyncio.sleep(min(max(wait, 0.05), config.lease_s / 3))  # renew well in time
    return state


async def _chunk(
    admin: Admin, config: RunnerConfig, current: _Run, zone: str, now: datetime
) -> State | None:
    size = min(core.chunk_size(current.row.spec.rate_per_s, config.chunk_s),
               admin.settings.campaign_chunk)  # fmt: skip
    where = campaign_store.in_zone(_eligible(current.where, current.row), zone)
    started = asyncio.get_running_loop().time()
    contacts = await audience_store.iter_contacts(
        admin.pool, SqlWhere(*where), current.cursors.get(zone, 0), size
    )
    messages: list[tuple[int, int, str, int]] = []
    rejected = 0
    clock = asyncio.get_running_loop().time
    fetched = clock()
    if contacts:
        await asyncio.sleep(current.bucket.take(len(contacts), clock()))
        messages, rejected = await _send(admin, current, contacts, zone, now)
    last = contacts[-1].id if contacts else current.cursors.get(zone, 0)
    chunk = Chunk(zone, last, len(contacts) < size, messages, rejected)
    sent = clock()
    state = await campaign_store.record(admin.pool, current.lease, chunk)
    log.debug("campaign %d: %d contacts of %s, fetched in %.3f s, sent %.3f s, recorded %.3f s",
              current.row.id, len(contacts), zone, fetched - started, sent - fetched,
              clock() - sent)  # fmt: skip
    current.cursors[zone] = last
    if chunk.done:
        current.done.add(zone)
    return state


async def _send(
    admin: Admin, current: _Run, contacts: Sequence[Any], zone: str, now: datetime
) -> tuple[list[tuple[int, int, str, int]], int]:
    """Render, store the short links, send; (message id, contact, variant, parts) of each
    accepted message, and how many the gateway refused."""
    row = current.row
    left = core.closes_in(row.spec.window, now, zone) or timedelta(0)
    picks = [core.variant_for(row.id, c.id, row.spec.variants).name for c in contacts]
    compiled = {c.variant.name: c for c in current.variants}
    texts = await _texts(admin, current, contacts, [compiled[p] for p in picks])
    outgoing = [
        Outgoing(
            to=c.phone,
            text=text,
            sender=row.spec.sender,
            client_ref=core.client_ref(row.id, row.run_id, c.id),
            priority="bulk",
            validity=core.validity_s(left),
        )
        for c, (text, _) in zip(contacts, texts, strict=True)
    ]
    gateway: GatewayClient = admin.gateway
    result = await gateway.send_batch(outgoing)
    await _attach_links(admin.pool, texts, result.sent)
    accepted = [(s.message_id, contacts[s.index].id, picks[s.index], s.parts) for s in result.sent]
    if result.rejected:
        codes = ", ".join(sorted({r.code for r in result.rejected}))
        log.warning("campaign %d: %d messages refused (%s)", row.id, len(result.rejected), codes)
    return accepted, len(result.rejected)


async def _texts(
    admin: Admin, current: _Run, contacts: Sequence[Any], compiled: Sequence[Compiled]
) -> list[tuple[str, tuple[str, ...]]]:
    """Each contact's text and its link codes, the links stored before anything is sent."""
    base = admin.settings.public_url
    drafts = [
        core.personal_text(v, c.fields, [_code() for _ in range(v.link_count)], base)
        for c, v in zip(contacts, compiled, strict=True)
    ]
    rows = [
        LinkRow(code, url, current.row.id, c.id)
        for c, d in zip(contacts, drafts, strict=True)
        for code, url in d.links
    ]
    if not rows:
        return [(d.text, ()) for d in drafts]
    stored = await link_store.save_links(admin.pool, rows, _code)
    if [r.code for r in stored] != [r.code for r in rows]:  # a collision: render again
        return _with_codes(admin, contacts, compiled, [r.code for r in stored])
    return [(d.text, tuple(code for code, _ in d.links)) for d in drafts]


def _with_codes(
    admin: Admin, contacts: Sequence[Any], compiled: Sequence[Compiled], codes: list[str]
) -> list[tuple[str, tuple[str, ...]]]:
    found = []
    for c, v in zip(contacts, compiled, strict=True):
        mine, codes = codes[: v.link_count], codes[v.link_count :]
        text = core.personal_text(v, c.fields, mine, admin.settings.public_url).text
        found.append((text, tuple(mine)))
    return found


def _code() -> str:
    return new_code(secrets.token_bytes)


async def _attach_links(
    pool: aiopg.Pool, texts: Sequence[tuple[str, tuple[str, ...]]], sent: Sequence[Any]
) -> None:
    pairs = [(code, s.message_id) for s in sent for code in texts[s.index][1]]
    if pairs:
        await link_store.attach_messages(pool, [p[0] for p in pairs], [p[1] for p in pairs])
