"""Retention decisions: which day partitions of ``messages`` to create, roll up and drop.

Message ids are time-ordered (``gateway/core/ids.py``: milliseconds since the id epoch in
the bits above ``NODE_BITS + SEQ_BITS``), so one UTC day is one contiguous id range and
``messages`` is partitioned by ``RANGE (id)``, one partition a day plus a DEFAULT one as a
safety net. Retention then drops a whole partition instead of deleting its rows.

A message is kept ``days`` days after it was accepted. The partition of day D holds
messages accepted in [D, D+1), so it may be dropped only once D+1 is ``days`` days in the
past; messages older than that in the partition that straddles the limit are scrubbed in
place (text emptied, number masked) and dropped with their partition a day later.
Pure: dates and integers in, frozen plans out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from gateway.core.ids import EPOCH_MS, NODE_BITS, SEQ_BITS

PREFIX = "messages_p"
DEFAULT_PARTITION = "messages_default"
ID_EPOCH_DAY = date(2026, 1, 1)  # the day of ids.EPOCH_MS: no id is older
_SHIFT = NODE_BITS + SEQ_BITS
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """``[retention]``: messages' texts and numbers are kept ``days`` days (0: for ever),
    inbound messages ``inbound_days``; aggregates (``daily_stats``) for ever. The
    maintenance task runs every ``interval_s``, makes partitions ``ahead`` days in advance
    and deletes or scrubs ``batch`` rows per statement."""

    days: int = 90
    inbound_days: int = 90
    ahead: int = 7
    interval_s: float = 3600.0
    batch: int = 5000

    def __post_init__(self) -> None:
        if self.days < 0 or self.inbound_days < 0:
            raise ValueError("days and inbound_days must be >= 0 (0: keep for ever)")
        if self.ahead < 1 or self.batch < 1 or self.interval_s <= 0:
            raise ValueError("ahead and batch must be >= 1, interval_s > 0")


@dataclass(frozen=True, slots=True)
class Plan:
    create: tuple[date, ...]  # partitions to make (oldest first)
    drop: tuple[date, ...]  # partitions to roll up, then drop (oldest first)


def id_at(moment_ms: int) -> int:
    """The smallest id made at or after Unix time ``moment_ms`` (0 before the id epoch)."""
    return max(moment_ms - EPOCH_MS, 0) << _SHIFT


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def day_bounds(day: date) -> tuple[int, int]:
    """The ids of one UTC day: [low, high)."""
    start = day_start_ms(day)
    return id_at(start), id_at(start + _DAY_MS)


def partition_name(day: date) -> str:
    return f"{PREFIX}{day:%Y%m%d}"


def partition_day(name: str) -> date | None:
    """The day of a partition's name; None for the default partition or any other table."""
    digits = name.removeprefix(PREFIX)
    if digits == name or len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return datetime.strptime(digits, "%Y%m%d").date()
    except ValueError:
        return None


def oldest_kept(today: date, days: int) -> date | None:
    """The oldest day whose partition must stay; None: keep everything (days == 0)."""
    return None if days == 0 else today - timedelta(days=days)


def plan(today: date, existing: Iterable[date], policy: RetentionSettings) -> Plan:
    """Partitions to create (today and ``ahead`` days after, if missing) and to drop
    (those whose whole day is over ``days`` days old)."""
    have = set(existing)
    wanted = (today + timedelta(days=n) for n in range(policy.ahead + 1))
    create = tuple(d for d in wanted if d not in have and d >= ID_EPOCH_DAY)
    keep_from = oldest_kept(today, policy.days)
    drop = () if keep_from is None else tuple(sorted(d for d in have if d < keep_from))
    return Plan(create, drop)


def scrub_before(now_ms: int, days: int) -> int | None:
    """Rows with an id below this are past retention and must be scrubbed (or dropped)."""
    return None if days == 0 else id_at(now_ms - days * _DAY_MS)
