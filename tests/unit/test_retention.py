"""Retention decisions and erasure matching: pure, no loop."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config_schema import ConfigError
from gateway.core.erasure import Subject, rewrite_fields, without_subject
from gateway.core.ids import IdGenerator
from gateway.core.retention import (
    DEFAULT_PARTITION,
    ID_EPOCH_DAY,
    RetentionSettings,
    day_bounds,
    day_start_ms,
    partition_day,
    partition_name,
    plan,
    scrub_before,
)
from gateway.settings import from_mapping

days_ = st.dates(min_value=date(2026, 1, 1), max_value=date(2090, 1, 1))


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2090, 1, 1)))
def test_an_id_falls_in_the_partition_of_its_utc_day(moment: datetime) -> None:
    moment = moment.replace(tzinfo=UTC)
    message_id = IdGenerator(1023, clock=lambda: moment.timestamp()).next()
    low, high = day_bounds(moment.date())
    assert low <= message_id < high


@given(days_)
def test_days_are_contiguous_and_names_round_trip(day: date) -> None:
    assert day_bounds(day)[1] == day_bounds(day + timedelta(days=1))[0]
    assert partition_day(partition_name(day)) == day


def test_the_default_partition_and_other_names_are_no_day() -> None:
    for name in (DEFAULT_PARTITION, "messages_p2026", "messages_p20261399", "ledger"):
        assert partition_day(name) is None


@given(
    today=days_,
    existing=st.sets(days_, max_size=40),
    days=st.integers(0, 400),
    ahead=st.integers(1, 30),
)
def test_plan_never_drops_a_day_inside_the_window(
    today: date, existing: set[date], days: int, ahead: int
) -> None:
    settings = RetentionSettings(days=days, ahead=ahead)
    decided = plan(today, existing, settings)
    now_ms = day_start_ms(today)  # the earliest moment of today: the strictest case
    for day in decided.drop:
        assert days > 0 and day in existing
        # every message of the dropped day is at least ``days`` days old
        assert day_start_ms(day + timedelta(days=1)) <= now_ms - days * 86_400_000
    for day in existing - set(decided.drop):
        assert days == 0 or day >= today - timedelta(days=days)
    assert set(decided.create).isdisjoint(existing)
    assert all(today <= d <= today + timedelta(days=ahead) for d in decided.create)
    assert not set(decided.create) & set(decided.drop)


@given(today=days_, ahead=st.integers(1, 30))
def test_plan_makes_today_and_the_days_ahead(today: date, ahead: int) -> None:
    decided = plan(today, [], RetentionSettings(ahead=ahead))
    assert decided.create == tuple(today + timedelta(days=n) for n in range(ahead + 1))


def test_days_zero_keeps_everything() -> None:
    old = [ID_EPOCH_DAY + timedelta(days=n) for n in range(10)]
    assert plan(date(2030, 1, 1), old, RetentionSettings(days=0)).drop == ()
    assert scrub_before(10**13, 0) is None


def test_bad_settings_are_refused() -> None:
    for bad in ({"days": -1}, {"inbound_days": -1}, {"ahead": 0}, {"batch": 0}):
        with pytest.raises(ValueError):
            RetentionSettings(**bad)  # type: ignore[arg-type]


SUBJECT = Subject("+79211234567")


@pytest.mark.parametrize(
    "text",
    ["+79211234567", "79211234567", '{"to":"+79211234567"}', "key:79211234567:count"],
)
def test_the_number_is_found_in_its_common_forms(text: str) -> None:
    assert SUBJECT.found_in(text)


@pytest.mark.parametrize("text", ["+792112345678", "1179211234567", "118138444185600000"])
def test_a_longer_run_of_digits_is_not_the_number(text: str) -> None:
    assert not SUBJECT.found_in(text)


def test_a_batch_keeps_other_peoples_items() -> None:
    batch = json.dumps([{"from": "+79211234567", "text": "a"}, {"from": "+79210000000"}])
    kept = without_subject(batch, SUBJECT)
    assert kept is not None and json.loads(kept) == [{"from": "+79210000000"}]
    assert without_subject(json.dumps([{"from": "+79211234567"}]), SUBJECT) is None
    assert rewrite_fields({"v": "1", "messages": batch}, SUBJECT) == {"v": "1", "messages": kept}
    assert rewrite_fields({"to": "+79211234567"}, SUBJECT) is None


def test_the_reason_is_redacted() -> None:
    assert "79211234567" not in SUBJECT.redact("asked by +79211234567 on the phone")


def test_the_retention_and_erasure_cores_import_no_io() -> None:
    code = (
        "import sys, gateway.core.retention, gateway.core.erasure; "
        "print('\\n'.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    io = {"asyncio", "aiohttp", "aiopg", "psycopg2", "redis", "socket", "ssl", "uvloop"}
    assert not [m for m in loaded if m.split(".")[0] in io]


def test_retention_is_read_from_the_config_file() -> None:
    settings = from_mapping({"retention": {"days": 30, "inbound_days": 0}})
    assert settings.retention == RetentionSettings(days=30, inbound_days=0)
    with pytest.raises(ConfigError, match="retention"):
        from_mapping({"retention": {"days": -1}})
