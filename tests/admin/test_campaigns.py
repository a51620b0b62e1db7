"""The campaign core, pure: state table, schedules, windows, split, caps, dry run."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from admin.core import campaigns as c
from admin.core.campaigns import Action, State

ZONES = (
    "Europe/Kaliningrad", "Europe/Moscow", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Omsk",
    "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok", "Asia/Magadan",
    "Asia/Kamchatka", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
    "Pacific/Chatham", "Asia/Kathmandu", "America/St_Johns", "Europe/London", "UTC",
)  # fmt: skip

instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
)
clocks = st.times().map(lambda t: t.replace(second=0, microsecond=0))
windows = st.builds(c.Window, clocks, clocks)


# --- state table ------------------------------------------------------------------------


def test_the_happy_path_and_a_pause() -> None:
    state = State.DRAFT
    for action in (Action.SCHEDULE, Action.LAUNCH, Action.PAUSE, Action.RESUME, Action.FINISH):
        state = c.transition(state, action)
    assert state is State.FINISHED


def test_a_recurring_campaign_rearms_between_runs() -> None:
    assert c.transition(State.RUNNING, Action.REARM) is State.SCHEDULED


@given(st.sampled_from(State), st.sampled_from(Action))
def test_every_transition_is_in_the_table_or_raises(state: State, action: Action) -> None:
    if action in c.allowed_actions(state):
        assert state in c.sources(action)
        assert isinstance(c.transition(state, action), State)
    else:
        with pytest.raises(c.IllegalTransition):
            c.transition(state, action)


@given(st.sampled_from(sorted(c.TERMINAL)), st.sampled_from(Action))
def test_nothing_leaves_a_terminal_state(state: State, action: Action) -> None:
    with pytest.raises(c.IllegalTransition):
        c.transition(state, action)


def test_a_finished_campaign_cannot_be_paused() -> None:
    with pytest.raises(c.IllegalTransition, match="finished campaign cannot pause"):
        c.transition(State.FINISHED, Action.PAUSE)


# --- schedules --------------------------------------------------------------------------


def test_a_past_once_schedule_is_due_now() -> None:
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert c.first_run(c.Once(now - timedelta(hours=1)), now) == now
    assert c.next_occurrence(c.Once(now - timedelta(hours=1)), now) is None


def test_daily_at_ten_moscow() -> None:
    daily = c.Recurring(time(10), "Europe/Moscow")
    now = datetime(2026, 5, 1, 8, tzinfo=UTC)  # 11:00 Moscow: today's run has passed
    assert c.first_run(daily, now) == datetime(2026, 5, 2, 7, tzinfo=UTC)


def test_weekly_on_mondays() -> None:
    weekly = c.Recurring(time(9, 30), "Asia/Vladivostok", frozenset({0}))
    found = c.next_occurrence(weekly, datetime(2026, 5, 1, tzinfo=UTC))  # a Friday
    assert found is not None
    assert found.astimezone(ZoneInfo("Asia/Vladivostok")).replace(tzinfo=None) == datetime(
        2026, 5, 4, 9, 30
    )


@settings(deadline=None)
@given(
    instants,
    clocks,
    st.sampled_from(ZONES),
    st.frozensets(st.integers(0, 6), min_size=1),
)
def test_next_occurrence_is_later_on_a_chosen_day_within_a_week(
    after: datetime, at: time, tz: str, days: frozenset[int]
) -> None:
    found = c.next_occurrence(c.Recurring(at, tz, days), after)
    assert found is not None
    assert after < found <= after + timedelta(days=8)
    assert found.astimezone(ZoneInfo(tz)).weekday() in days


def test_schedules_round_trip_through_json() -> None:
    for schedule in (
        c.Once(datetime(2026, 5, 1, 9, tzinfo=UTC)),
        c.Recurring(time(10, 15), "Asia/Omsk", frozenset({1, 3})),
    ):
        assert c.parse_schedule(c.schedule_json(schedule)) == schedule


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (None, "schedule"),
        ({"kind": "hourly"}, "schedule.kind"),
        ({"kind": "once", "at": "2026-05-01T09:00"}, "schedule.at"),
        ({"kind": "recurring", "at": "25:00", "tz": "UTC"}, "schedule.at"),
        ({"kind": "recurring", "at": "10:00", "tz": "Mars/Olympus"}, "schedule.tz"),
        ({"kind": "recurring", "at": "10:00", "tz": "UTC", "weekdays": [7]}, "schedule.weekdays"),
        ({"kind": "recurring", "at": "10:00", "tz": "UTC", "weekdays": []}, "schedule.weekdays"),
    ],
)
def test_bad_schedules_name_the_field(data: object, field: str) -> None:
    with pytest.raises(c.InvalidCampaign) as caught:
        c.parse_schedule(data)
    assert caught.value.field == field


# --- the send window --------------------------------------------------------------------


def test_eleven_russian_zones_at_one_instant() -> None:
    window = c.Window(time(9), time(21))
    now = datetime(2026, 5, 1, 5, 30, tzinfo=UTC)  # 08:30 Moscow, 16:30 Kamchatka
    found = c.open_zones(window, now, ZONES[:11])
    assert "Europe/Moscow" not in found and "Asia/Kamchatka" in found
    assert "Asia/Yekaterinburg" in found  # 10:30
    opening = c.next_opening(window, now, ["Europe/Moscow"])
    assert opening == datetime(2026, 5, 1, 6, tzinfo=UTC)


def test_an_unknown_zone_counts_as_moscow() -> None:
    window = c.Window(time(9), time(21))
    now = datetime(2026, 5, 1, 7, tzinfo=UTC)  # 10:00 Moscow
    assert c.open_zones(window, now, ["", "Not/AZone"]) == {"", "Not/AZone"}


@settings(max_examples=300, deadline=None)
@given(windows, instants, st.sampled_from(ZONES), st.integers(0, 3600))
def test_never_sends_outside_the_window(
    window: c.Window, now: datetime, tz: str, margin_s: int
) -> None:
    """A zone reported open is inside its window now and for the whole margin after."""
    margin = timedelta(seconds=margin_s)
    if tz not in c.open_zones(window, now, [tz], margin):
        return
    for step in range(0, margin_s + 1, max(1, margin_s // 10)):
        at = (now + timedelta(seconds=step)).astimezone(ZoneInfo(tz))
        assert window.contains(at.time().replace(tzinfo=None)), (at, step)


@settings(max_examples=300, deadline=None)
@given(windows, instants, st.sampled_from(ZONES))
def test_the_next_opening_opens_a_zone_and_none_opens_before(
    window: c.Window, now: datetime, tz: str
) -> None:
    opening = c.next_opening(window, now, [tz])
    if opening is None:
        assert window.start == window.end
        return
    assert now < opening <= now + timedelta(days=2)
    assert c.is_open(window, opening, tz)
    if not c.is_open(window, now, tz):  # closed until then: nothing opens in between
        span = (opening - now) / 20
        for k in range(1, 20):
            assert not c.is_open(window, now + span * k - timedelta(seconds=1), tz)


@settings(max_examples=200, deadline=None)
@given(windows, instants, st.sampled_from(ZONES))
def test_validity_ends_when_the_window_closes(window: c.Window, now: datetime, tz: str) -> None:
    left = c.closes_in(window, now, tz)
    if left is None or left == timedelta.max:
        return
    assert c.is_open(window, now + left - timedelta(seconds=1), tz)
    assert not c.is_open(window, now + left, tz) or left >= timedelta(hours=23)


def test_a_window_over_midnight() -> None:
    night = c.Window(time(22), time(2))
    assert night.contains(time(23)) and night.contains(time(1)) and not night.contains(time(3))


def test_windows_parse_and_refuse() -> None:
    assert c.parse_window({"start": "09:00", "end": "21:00"}) == c.Window(time(9), time(21))
    assert c.parse_window(None) == c.ALWAYS
    with pytest.raises(c.InvalidCampaign) as caught:
        c.parse_window({"start": "9am", "end": "21:00"})
    assert caught.value.field == "window.start"


# --- A/B split --------------------------------------------------------------------------

split_percents = st.integers(1, 99).map(lambda p: (Decimal(p), Decimal(100 - p)))


@settings(max_examples=30, deadline=None)
@given(split_percents, st.integers(1, 10**6))
def test_split_proportions_hold(percents: tuple[Decimal, Decimal], campaign: int) -> None:
    variants = (c.Variant("A", 1, percents[0]), c.Variant("B", 2, percents[1]))
    n = 20_000
    a = sum(c.variant_for(campaign, contact, variants).name == "A" for contact in range(n))
    expected = float(percents[0]) / 100 * n
    assert abs(a - expected) < 5 * (n * 0.25) ** 0.5  # five standard deviations


@given(st.integers(1, 10**9), st.integers(1, 10**12))
def test_the_split_is_stable_in_another_process(campaign: int, contact: int) -> None:
    assert c.bucket(campaign, contact) == c.bucket(campaign, contact)
    assert 0 <= c.bucket(campaign, contact) < 10_000


def test_the_split_does_not_depend_on_the_process() -> None:
    code = "from admin.core.campaigns import bucket; print([bucket(7, i) for i in range(50)])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert other.stdout.strip() == str([c.bucket(7, i) for i in range(50)])


@settings(deadline=None)
@given(st.integers(0, 10**7), st.lists(st.integers(1, 50), min_size=1, max_size=5))
def test_apportion_adds_up(total: int, weights: list[int]) -> None:
    shares = [Decimal(w * 100) / sum(weights) for w in weights]
    variants = tuple(c.Variant(chr(65 + i), i + 1, p) for i, p in enumerate(shares))
    counts = c.apportion(total, variants)
    assert sum(counts.values()) == total
    assert all(abs(counts[v.name] - total * v.percent / 100) <= 1 for v in variants)


def test_variants_parse_and_must_add_up() -> None:
    parsed = c.parse_variants(
        [{"template_id": 3, "percent": 30}, {"template_id": 4, "percent": 70}]
    )
    assert [(v.name, v.template_id, v.percent) for v in parsed] == [
        ("A", 3, Decimal(30)),
        ("B", 4, Decimal(70)),
    ]
    with pytest.raises(c.InvalidCampaign) as caught:
        c.parse_variants([{"template_id": 3, "percent": 30}])
    assert caught.value.field == "variants[0].percent"
    with pytest.raises(c.InvalidCampaign) as caught:
        c.parse_variants([{"template_id": "x", "percent": 100}])
    assert caught.value.field == "variants[0].template_id"


# --- caps, chunks, dry run --------------------------------------------------------------


def test_frequency_cap() -> None:
    cap = c.parse_cap({"messages": 2, "period_hours": 24})
    assert cap == c.FrequencyCap(2, timedelta(hours=24))
    now = datetime(2026, 5, 1, tzinfo=UTC)
    assert cap.since(now) == now - timedelta(days=1)
    assert cap.allows(1) and not cap.allows(2)
    assert c.parse_cap(None) is None
    with pytest.raises(c.InvalidCampaign) as caught:
        c.parse_cap({"messages": 0, "period_hours": 24})
    assert caught.value.field == "frequency_cap.messages"


def test_chunks_are_about_a_second_of_sending() -> None:
    assert c.chunk_size(50) == 50
    assert c.chunk_size(5000) == 1000
    assert c.chunk_size(1, seconds=0.5) == 1


def test_client_ref_names_campaign_run_and_contact() -> None:
    assert c.client_ref(12, 3, 456) == "c12:3:456"


def test_dry_run_arithmetic() -> None:
    variants = (c.Variant("A", 1, Decimal(50)), c.Variant("B", 2, Decimal(50)))
    found = c.estimate(1001, variants, {1: 1, 2: 2}, Decimal("0.35"))
    assert [(v.contacts, v.parts) for v in found.variants] == [(501, 501), (500, 1000)]
    assert found.parts == 1501
    assert found.cost == Decimal("525.35")
    assert found.contacts == 1001


def test_the_core_imports_no_io() -> None:
    code = "import sys, admin.core.campaigns; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    bad = {"asyncio", "aiohttp", "aiopg", "psycopg2", "redis", "socket"}
    assert not bad & {m.split(".")[0] for m in loaded.stdout.split()}
