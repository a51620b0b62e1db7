"""The adaptive window stays within its bounds, shrinks on congestion, and grows back."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.aimd import Aimd, AimdSettings, answered, congested, start

FAST = 0.001  # seconds: well under every target below

settings_st = st.builds(
    lambda low, extra, target, factor: AimdSettings(low, low + extra, target, factor),
    st.integers(1, 50),
    st.integers(0, 200),
    st.floats(0.01, 5.0),
    st.floats(1.5, 50.0),
)
answer_st = st.tuples(
    st.floats(0.0, 2.0),  # time since the previous answer
    st.floats(0.0, 20.0),  # latency
    st.booleans(),  # congested
)


def run(settings: AimdSettings, state: Aimd, answers: list[tuple[float, float, bool]]) -> Aimd:
    now = 0.0
    for gap, latency, refused in answers:
        now += gap
        state = answered(settings, state, now, latency, refused)
        assert settings.window_min <= state.size <= settings.window_max
    return state


@given(settings_st, st.lists(answer_st, max_size=300))
def test_the_window_always_stays_within_bounds(
    settings: AimdSettings, answers: list[tuple[float, float, bool]]
) -> None:
    run(settings, start(settings), answers)


@given(settings_st, st.lists(answer_st, max_size=100), st.floats(0.0, 1.0))
def test_congestion_shrinks_the_window_unless_at_min_or_cut_this_round_trip(
    settings: AimdSettings, answers: list[tuple[float, float, bool]], latency: float
) -> None:
    state = run(settings, start(settings), answers)
    later = len(answers) * 2.0 + 100.0  # beyond any round trip since the last cut
    after = answered(settings, state, later, latency, congested=True)
    if state.window > settings.window_min:
        assert after.window < state.window
        assert after.window == max(settings.window_min, state.window * settings.decrease)
    else:
        assert after.window == settings.window_min


@given(settings_st, st.lists(answer_st, max_size=100))
def test_a_run_of_fast_answers_grows_the_window_to_the_max(
    settings: AimdSettings, answers: list[tuple[float, float, bool]]
) -> None:
    state = run(settings, start(settings), answers)
    state = Aimd(state.window)  # forget the slow history: a new, fast peer from here on
    now = 0.0
    for _ in range(settings.window_max**2 + 1):
        now += FAST
        state = answered(settings, state, now, FAST)
    assert state.size == settings.window_max


def test_one_cut_per_round_trip() -> None:
    settings = AimdSettings(1, 64)
    state = answered(settings, start(settings), 10.0, 0.1, congested=True)
    assert state.window == 32
    for n in range(20):  # the rest of that window's throttled answers
        state = answered(settings, state, 10.0 + n * 0.001, 0.1, congested=True)
    assert state.window == 32
    assert answered(settings, state, 10.2, 0.1, congested=True).window == 16


def test_rising_latency_cuts_the_window() -> None:
    settings = AimdSettings(1, 64, latency_target=0.2, latency_factor=10.0)
    state, now = start(settings), 0.0
    for _ in range(50):
        now += 0.01
        state = answered(settings, state, now, 0.005)
    assert state.size == 64
    for _ in range(30):  # the SMSC slows to 600 ms: far above 10 × its 5 ms floor
        now += 0.01
        state = answered(settings, state, now, 0.6)
    assert state.size < 64
    assert state.floor == 0.005


def test_a_uniformly_slow_peer_is_not_congested() -> None:
    settings = AimdSettings(1, 64, latency_target=0.2, latency_factor=10.0)
    state, now = start(settings), 0.0
    for _ in range(200):
        now += 0.01
        state = answered(settings, state, now, 1.5)  # slow, but never slower than usual
    assert state.size == 64


def test_congestion_without_a_latency() -> None:
    settings = AimdSettings(2, 10)
    state = congested(settings, start(settings), 1.0)
    assert (state.window, state.last_cut, state.latency) == (5.0, 1.0, None)
    assert congested(settings, Aimd(3.0, floor=math.inf), 5.0).window == 2


@pytest.mark.parametrize(
    "bad",
    [{"window_min": 0}, {"window_min": 5, "window_max": 4}, {"decrease": 1.0}, {"increase": 0}],
)
def test_bad_settings(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AimdSettings(**bad)  # type: ignore[arg-type]


def test_a_steady_share_of_refusals_on_a_fast_link_keeps_the_window_open() -> None:
    """Every fifth answer refused on a 2 ms round trip (a window's worth of answers per
    round trip): cuts at most every ``cut_interval``, and the growth between them keeps
    the window far above its floor (it fell to 1 when every round trip could cut)."""
    settings = AimdSettings(1, 500)
    state, now = start(settings), 0.0
    for n in range(100_000):
        now += 0.002 / state.window
        state = answered(settings, state, now, 0.002, congested=n % 5 == 0)
    assert now > 1.0 and state.size >= 50
