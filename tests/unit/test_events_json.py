"""The events stream's JSON, written by hand for speed, is json.dumps's text exactly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from gateway.adapters.message_store import StatusEvent
from gateway.core.lifecycle import State
from gateway.services.events import _fields, events_json

_zones = st.sampled_from([UTC, timezone(timedelta(hours=3)), None])
_events = st.builds(
    StatusEvent,
    message_id=st.integers(0, 2**63 - 1),
    client_id=st.integers(0, 2**31),
    state=st.sampled_from(list(State)),
    at=st.builds(lambda d, tz: d.replace(tzinfo=tz), st.datetimes(datetime(2000, 1, 1)), _zones),
    provider=st.none() | st.text(max_size=12),
    error_code=st.none() | st.text(max_size=12),
    price=st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=6),
    parts=st.none() | st.integers(1, 255),
)


@given(st.lists(_events, max_size=5))
def test_events_json_is_json_dumps_of_the_fields(events: list[StatusEvent]) -> None:
    assert events_json(events) == json.dumps([_fields(e) for e in events])
