"""Campaigns, pure: the state table, schedules, send windows, A/B split, caps, dry run.

No IO here. The runner (``admin.services.campaign_runner``) asks these functions what to
do and does it; the HTTP edge parses untrusted input with ``parse_*`` once.

Send windows are local times in each *recipient's* zone: at any instant only some zones
are inside the window (``open_zones``), and the runner sends to those alone; a message
also carries a validity that ends when its recipient's window closes, so one the gateway
could not hand over in time expires instead of arriving at night.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from admin.core.links import find_links, personalise
from admin.core.templates import Template, parse_template, render
from admin.core.translit import transliterate
from gateway.core.validation import SENDER_RULE, valid_sender_id

DEFAULT_ZONE = "Europe/Moscow"  # a contact whose zone is unknown or not an IANA name


class InvalidCampaign(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.message = message
        self.field = field


# --- the state table --------------------------------------------------------------------


class State(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    CANCELLED = "cancelled"


class Action(enum.StrEnum):
    SCHEDULE = "schedule"  # a marketer: start at the schedule's time (now, for "start now")
    UNSCHEDULE = "unschedule"  # a marketer: back to draft, to edit
    LAUNCH = "launch"  # the runner: a scheduled campaign fell due
    PAUSE = "pause"
    RESUME = "resume"
    REARM = "rearm"  # the runner: a recurring campaign's run ended, wait for the next one
    FINISH = "finish"  # the runner: the last run ended
    CANCEL = "cancel"


_TRANSITIONS: dict[tuple[State, Action], State] = {
    (State.DRAFT, Action.SCHEDULE): State.SCHEDULED,
    (State.SCHEDULED, Action.UNSCHEDULE): State.DRAFT,
    (State.SCHEDULED, Action.LAUNCH): State.RUNNING,
    (State.RUNNING, Action.PAUSE): State.PAUSED,
    (State.PAUSED, Action.RESUME): State.RUNNING,
    (State.RUNNING, Action.REARM): State.SCHEDULED,
    (State.RUNNING, Action.FINISH): State.FINISHED,
    (State.DRAFT, Action.CANCEL): State.CANCELLED,
    (State.SCHEDULED, Action.CANCEL): State.CANCELLED,
    (State.RUNNING, Action.CANCEL): State.CANCELLED,
    (State.PAUSED, Action.CANCEL): State.CANCELLED,
}

EDITABLE = frozenset({State.DRAFT})
TERMINAL = frozenset({State.FINISHED, State.CANCELLED})


class IllegalTransition(Exception):
    def __init__(self, state: State, action: Action) -> None:
        super().__init__(f"a {state.value} campaign cannot {action.value}")
        self.state = state
        self.action = action


def transition(state: State, action: Action) -> State:
    try:
        return _TRANSITIONS[state, action]
    except KeyError:
        raise IllegalTransition(state, action) from None


def allowed_actions(state: State) -> tuple[Action, ...]:
    return tuple(a for (s, a) in _TRANSITIONS if s == state)


def sources(action: Action) -> tuple[State, ...]:
    """The states ``action`` may leave from (an UPDATE's WHERE clause)."""
    return tuple(s for (s, a) in _TRANSITIONS if a == action)


# --- zones ------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def zone(name: str | None) -> ZoneInfo:
    """The contact's zone; an unknown or malformed name falls back to ``DEFAULT_ZONE``."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    return ZoneInfo(DEFAULT_ZONE)


def _at(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """``clock`` on ``day`` in ``tz`` as an aware UTC time (a time in a DST gap moves on)."""
    local = datetime.combine(day, clock, tzinfo=tz)
    return local.astimezone(UTC)


# --- schedules --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Once:
    at: datetime  # aware


@dataclass(frozen=True, slots=True)
class Recurring:
    """Every day, or on the given weekdays (0 = Monday), at a local time of ``tz``."""

    at: time
    tz: str
    weekdays: frozenset[int] = frozenset(range(7))


Schedule = Once | Recurring


def first_run(schedule: Schedule, now: datetime) -> datetime:
    """When a campaign scheduled at ``now`` first falls due (a past ``Once`` is due now)."""
    if isinstance(schedule, Once):
        return max(schedule.at, now)
    found = next_occurrence(schedule, now - timedelta(microseconds=1))
    assert found is not None  # a recurring schedule with weekdays always recurs
    return found


def next_occurrence(schedule: Schedule, after: datetime) -> datetime | None:
    """The first occurrence strictly after ``after``; None when there is no more."""
    if isinstance(schedule, Once):
        return schedule.at if schedule.at > after else None
    tz = zone(schedule.tz)
    start = after.astimezone(tz).date()
    for offset in range(8):
        day = start + timedelta(days=offset)
        if day.weekday() in schedule.weekdays:
            candidate = _at(day, schedule.at, tz)
            if candidate > after:
                return candidate
    return None


def schedule_json(schedule: Schedule) -> dict[str, object]:
    if isinstance(schedule, Once):
        return {"kind": "once", "at": schedule.at.isoformat()}
    return {
        "kind": "recurring",
        "at": schedule.at.strftime("%H:%M"),
        "tz": schedule.tz,
        "weekdays": sorted(schedule.weekdays),
    }


def parse_schedule(data: object, field: str = "schedule") -> Schedule:
    if not isinstance(data, Mapping):
        raise InvalidCampaign("an object with kind once or recurring", field)
    kind = data.get("kind")
    if kind == "once":
        return Once(_aware(data.get("at"), f"{field}.at"))
    if kind == "recurring":
        return Recurring(
            _clock(data.get("at"), f"{field}.at"),
            _zone_name(data.get("tz"), f"{field}.tz"),
            _weekdays(data.get("weekdays", list(range(7))), f"{field}.weekdays"),
        )
    raise InvalidCampaign("kind must be once or recurring", f"{field}.kind")


def _aware(value: object, field: str) -> datetime:
    try:
        at = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise InvalidCampaign("an ISO 8601 time with a time zone", field)
    return at.astimezone(UTC)


def _clock(value: object, field: str) -> time:
    if isinstance(value, str) and len(value) <= 8:
        try:
            return time.fromisoformat(value).replace(tzinfo=None, microsecond=0)
        except ValueError:
            pass
    raise InvalidCampaign("a local time HH:MM", field)


def _zone_name(value: object, field: str) -> str:
    if not isinstance(value, str) or zone(value).key != value:
        raise InvalidCampaign("an IANA time zone, e.g. Europe/Moscow", field)
    return value


def _weekdays(value: object, field: str) -> frozenset[int]:
    days = value if isinstance(value, list) else []
    if not days or not all(type(d) is int and 0 <= d <= 6 for d in days):
        raise InvalidCampaign("a non-empty list of weekdays 0 (Monday) to 6", field)
    return frozenset(days)


# --- the daily send window --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """Local times ``[start, end)``; ``start > end`` spans midnight; equal: always open."""

    start: time
    end: time

    def contains(self, clock: time) -> bool:
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end


ALWAYS = Window(time(0), time(0))


def _local(now: datetime, name: str | None) -> datetime:
    return now.astimezone(zone(name))


def is_open(window: Window, now: datetime, name: str | None) -> bool:
    return window.contains(_local(now, name).time().replace(tzinfo=None))


def closes_in(window: Window, now: datetime, name: str | None) -> timedelta | None:
    """How long ``name``'s window stays open from ``now``; None: it is closed (or never
    closes, for ``ALWAYS``: then ``timedelta.max``)."""
    if not is_open(window, now, name):
        return None
    if window.start == window.end:
        return timedelta.max
    tz = zone(name)
    day = _local(now, name).date()
    ends = (_at(day + timedelta(days=d), window.end, tz) for d in (-1, 0, 1, 2))
    return min(e for e in ends if e > now) - now


def open_zones(
    window: Window, now: datetime, zones: Iterable[str], margin: timedelta = timedelta(0)
) -> frozenset[str]:
    """The zones inside the window at ``now`` and for at least ``margin`` longer."""
    found: set[str] = set()
    for name in zones:
        left = closes_in(window, now, name)
        if left is not None and left > margin:
            found.add(name)
    return frozenset(found)


def next_opening(window: Window, now: datetime, zones: Iterable[str]) -> datetime | None:
    """The first instant after ``now`` at which a zone's window opens."""
    if window.start == window.end:
        return None
    times = [_opening_after(window, now, name) for name in zones]
    return min(times, default=None)


def _opening_after(window: Window, now: datetime, name: str) -> datetime:
    tz = zone(name)
    day = _local(now, name).date()
    starts = (_at(day + timedelta(days=d), window.start, tz) for d in range(3))
    return min(s for s in starts if s > now)


def parse_window(data: object, field: str = "window") -> Window:
    """``{"start": "09:00", "end": "21:00"}``; null: always open."""
    if data is None:
        return ALWAYS
    if not isinstance(data, Mapping):
        raise InvalidCampaign("an object with start and end local times", field)
    return Window(
        _clock(data.get("start"), f"{field}.start"), _clock(data.get("end"), f"{field}.end")
    )


# --- A/B split --------------------------------------------------------------------------

_BUCKETS = 10_000  # basis points: a split is exact to 0.01 %


@dataclass(frozen=True, slots=True)
class Variant:
    name: str  # one letter, A..Z
    template_id: int
    percent: Decimal


def bucket(campaign_id: int, contact_id: int) -> int:
    """A stable bucket in [0, 10000): the same on every process and after restarts
    (``hash()`` of a str is salted per process, so it cannot be used)."""
    digest = hashlib.blake2b(f"{campaign_id}:{contact_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % _BUCKETS


def variant_for(campaign_id: int, contact_id: int, variants: tuple[Variant, ...]) -> Variant:
    point = bucket(campaign_id, contact_id)
    edge = 0
    for v in variants:
        edge += int(v.percent * _BUCKETS / 100)
        if point < edge:
            return v
    return variants[-1]  # rounding leaves the last bucket(s) to the last variant


def parse_variants(data: object, field: str = "variants") -> tuple[Variant, ...]:
    if not isinstance(data, list) or not 1 <= len(data) <= 26:
        raise InvalidCampaign("a list of 1 to 26 variants", field)
    variants = tuple(_variant(item, i, f"{field}[{i}]") for i, item in enumerate(data))
    if sum(v.percent for v in variants) != 100:
        raise InvalidCampaign("the percentages must add up to 100", f"{field}[0].percent")
    return variants


def _variant(item: object, index: int, field: str) -> Variant:
    if not isinstance(item, Mapping):
        raise InvalidCampaign("an object with template_id and percent", field)
    template = item.get("template_id")
    if isinstance(template, bool) or not isinstance(template, int) or template <= 0:
        raise InvalidCampaign("a template id", f"{field}.template_id")
    percent = _decimal(item.get("percent", 100), f"{field}.percent")
    if not 0 < percent <= 100 or percent != percent.quantize(Decimal("0.01")):
        raise InvalidCampaign("a percentage above 0, at most 100, to 0.01", f"{field}.percent")
    return Variant(chr(ord("A") + index), template, percent)


def _decimal(value: object, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | str | float):
        raise InvalidCampaign("a number", field)
    try:
        found = Decimal(str(value))
    except ArithmeticError:
        raise InvalidCampaign("a number", field) from None
    if not found.is_finite():
        raise InvalidCampaign("a number", field)
    return found


def apportion(total: int, variants: tuple[Variant, ...]) -> dict[str, int]:
    """Expected contacts per variant, summing to ``total`` (largest remainder)."""
    exact = [(v.name, total * v.percent / 100) for v in variants]
    counts = {name: int(share) for name, share in exact}
    by_remainder = sorted(exact, key=lambda e: e[1] - int(e[1]), reverse=True)
    for name, _ in by_remainder[: total - sum(counts.values())]:
        counts[name] += 1
    return counts


# --- caps -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    """At most ``messages`` marketing messages per contact in any ``period``."""

    messages: int
    period: timedelta

    def since(self, now: datetime) -> datetime:
        """Sends after this instant count against the cap."""
        return now - self.period

    def allows(self, recent_sends: int) -> bool:
        return recent_sends < self.messages


def parse_cap(data: object, field: str = "frequency_cap") -> FrequencyCap | None:
    """``{"messages": 2, "period_hours": 168}``; null: no cap."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise InvalidCampaign("an object with messages and period_hours", field)
    messages = _count(data.get("messages"), f"{field}.messages", 1, 1000)
    hours = _count(data.get("period_hours"), f"{field}.period_hours", 1, 24 * 366)
    return FrequencyCap(messages, timedelta(hours=hours))


def parse_rate(value: object, field: str = "rate_per_s") -> int:
    return _count(value, field, 1, 10_000)


def _count(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidCampaign(f"an integer from {low} to {high}", field)
    return value


def chunk_size(rate_per_s: int, seconds: float = 1.0, most: int = 1000) -> int:
    """Contacts per chunk: about ``seconds`` of sending at the rate cap, so that a pause
    or cancel takes effect within that long, and no more than one gateway batch."""
    return max(1, min(most, int(rate_per_s * seconds)))


def client_ref(campaign_id: int, run: int, contact_id: int) -> str:
    """The gateway's idempotency key: a chunk resent after a crash makes no duplicate."""
    return f"c{campaign_id}:{run}:{contact_id}"


def validity_s(left: timedelta, most: timedelta = timedelta(days=3)) -> int:
    """The gateway validity for a message whose recipient's window closes in ``left``."""
    return int(min(left, most).total_seconds())


# --- dry run ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VariantEstimate:
    variant: str
    template_id: int
    contacts: int
    parts_each: int
    parts: int
    cost: Decimal


@dataclass(frozen=True, slots=True)
class Estimate:
    contacts: int
    variants: tuple[VariantEstimate, ...]
    parts: int
    cost: Decimal


def estimate(
    eligible: int,
    variants: tuple[Variant, ...],
    parts_each: Mapping[int, int],
    price_per_part: Decimal,
) -> Estimate:
    """Counts, parts and cost of a dry run: ``parts_each`` maps a template to its parts
    (as rendered with the defaults; a long name may add a part)."""
    counts = apportion(eligible, variants)
    rows = tuple(_variant_estimate(v, counts[v.name], parts_each[v.template_id], price_per_part)
                 for v in variants)  # fmt: skip
    return Estimate(
        contacts=eligible,
        variants=rows,
        parts=sum(r.parts for r in rows),
        cost=sum((r.cost for r in rows), Decimal(0)),
    )


def _variant_estimate(
    v: Variant, contacts: int, parts_each: int, price: Decimal
) -> VariantEstimate:
    parts = contacts * parts_each
    return VariantEstimate(v.name, v.template_id, contacts, parts_each, parts, parts * price)


# --- a campaign as edited ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spec:
    """What a marketer edits: validated once, at the edge."""

    name: str
    audience_id: int
    sender: str
    variants: tuple[Variant, ...]
    schedule: Schedule
    window: Window = ALWAYS
    rate_per_s: int = 100
    cap: FrequencyCap | None = None


def parse_spec(data: object) -> Spec:
    """A campaign from untrusted JSON; raises ``InvalidCampaign`` naming the field."""
    if not isinstance(data, Mapping):
        raise InvalidCampaign("a JSON object", "body")
    return Spec(
        name=_name(data.get("name")),
        audience_id=_count(data.get("audience_id"), "audience_id", 1, 2**62),
        sender=_sender(data.get("sender")),
        variants=parse_variants(data.get("variants")),
        schedule=parse_schedule(data.get("schedule")),
        window=parse_window(data.get("window")),
        rate_per_s=parse_rate(data.get("rate_per_s", 100)),
        cap=parse_cap(data.get("frequency_cap")),
    )


def _name(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 200 or "\x00" in value:
        raise InvalidCampaign("required, 1 to 200 characters", "name")
    return value.strip()


def _sender(value: object) -> str:
    if not isinstance(value, str) or not valid_sender_id(value):
        raise InvalidCampaign(SENDER_RULE, "sender")
    return value


def window_json(window: Window) -> dict[str, str] | None:
    if window == ALWAYS:
        return None
    return {"start": window.start.strftime("%H:%M"), "end": window.end.strftime("%H:%M")}


def spec_json(spec: Spec) -> dict[str, object]:
    """The inverse of ``parse_spec`` (the edit form loads it)."""
    cap = spec.cap
    return {
        "name": spec.name,
        "audience_id": spec.audience_id,
        "sender": spec.sender,
        "variants": [
            {"template_id": v.template_id, "percent": str(v.percent)} for v in spec.variants
        ],
        "schedule": schedule_json(spec.schedule),
        "window": window_json(spec.window),
        "rate_per_s": spec.rate_per_s,
        "frequency_cap": cap
        and {"messages": cap.messages, "period_hours": cap.period // timedelta(hours=1)},
    }


# --- one recipient's text ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Compiled:
    """A variant's template, parsed once per run."""

    variant: Variant
    text: str  # as written (short links are found in it, before rendering)
    template: Template
    defaults: Mapping[str, str]
    transliterate: bool
    link_count: int  # links to shorten per recipient; 0: links left as written


def compile_variant(
    variant: Variant, text: str, defaults: Mapping[str, str], translit: bool, track_links: bool
) -> Compiled:
    links = len(find_links(text)) if track_links else 0
    return Compiled(variant, text, parse_template(text), defaults, translit, links)


@dataclass(frozen=True, slots=True)
class Personalised:
    text: str
    links: tuple[tuple[str, str], ...]  # (code, target URL) to store before sending


def personal_text(
    compiled: Compiled, fields: Mapping[str, Any], codes: Sequence[str], base_url: str
) -> Personalised:
    """The text one contact gets: placeholders filled, links shortened, transliterated."""
    if compiled.link_count:
        personal = personalise(compiled.text, fields, compiled.defaults, codes, base_url)
        text = render(parse_template(personal.text), fields, compiled.defaults)
        links = personal.links
    else:
        text, links = render(compiled.template, fields, compiled.defaults), ()
    return Personalised(transliterate(text) if compiled.transliterate else text, links)
