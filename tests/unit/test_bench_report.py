"""The benchmark's pure parts: percentiles, the report, the scenarios' request bodies."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadtest import scenarios
from loadtest.medians import figures, medians, render_medians
from loadtest.report import (
    ProcessUsage,
    Rates,
    RawCeiling,
    Report,
    Spread,
    nearest_rank,
    render,
    spread,
    to_json,
)
from loadtest.scenarios import SCENARIOS, bodies, item_template, with_overrides
from providers.encoding import analyse

latencies = st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=500)


def test_nearest_rank_on_a_hundred_values() -> None:
    values = [float(v) for v in range(1, 101)]
    assert nearest_rank(values, 0.5) == 50.0
    assert nearest_rank(values, 0.95) == 95.0
    assert nearest_rank(values, 0.99) == 99.0
    assert nearest_rank(values, 1.0) == 100.0


def test_nearest_rank_of_one_value_and_of_none() -> None:
    assert nearest_rank([7.0], 0.99) == 7.0
    with pytest.raises(ValueError):
        nearest_rank([], 0.5)


def test_spread_of_nothing_is_empty() -> None:
    assert spread([]) == Spread()


@given(latencies)
def test_spread_is_ordered_and_made_of_observed_values(values: list[float]) -> None:
    s = spread(values)
    assert s.n == len(values)
    assert s.p50 is not None and s.p95 is not None and s.p99 is not None
    assert min(values) <= s.p50 <= s.p95 <= s.p99 <= (s.max or 0) == max(values)
    assert {s.p50, s.p95, s.p99} <= set(values)


@given(latencies, st.floats(0.01, 1.0))
def test_at_least_q_of_the_values_lie_at_or_below_the_quantile(
    values: list[float], q: float
) -> None:
    cut = nearest_rank(sorted(values), q)
    assert sum(v <= cut for v in values) >= math.ceil(q * len(values))


def _report(**changes: object) -> Report:
    fields: dict[str, object] = {
        "scenario": "batch",
        "params": {"count": 1000, "procs": 1},
        "offered": 1000,
        "accepted": 1000,
        "seconds": 4.0,
        "rates": Rates(900.0, 800.0, 700.0, 600.0),
        "end_to_end": "delivered / (last final − first accept)",
        "latency_ms": {"accept (HTTP request)": spread([1.0, 2.0, 3.0])},
        "errors": {},
        "final_states": {"delivered": 1000},
        "not_final": 0,
        "processes": (ProcessUsage("gateway", 3.5, 180.0),),
        "raw_ceiling": RawCeiling(1000, 3, 9000.0, 6000.0, 0.4, True),
    }
    fields.update(changes)
    return Report(**fields)  # type: ignore[arg-type]


def test_the_raw_ceiling_counts_messages_of_several_parts() -> None:
    report = _report()
    assert report.raw_ceiling is not None
    assert report.raw_ceiling.messages_per_s == 2000.0  # 6,000 receipts/s of 3 parts each
    assert report.fraction_of_raw == pytest.approx(0.3)


def test_a_run_is_ok_only_if_every_message_is_accepted_and_final_without_errors() -> None:
    assert _report().ok
    assert not _report(not_final=1).ok
    assert not _report(accepted=999).ok
    assert not _report(errors={"HTTP 500": 1}).ok


def test_the_json_holds_every_field() -> None:
    data = json.loads(json.dumps(to_json(_report())))
    for key in ("rates", "latency_ms", "errors", "not_final", "processes", "raw_ceiling"):
        assert key in data
    assert set(data["rates"]) == {
        "accepted_per_s",
        "submitted_per_s",
        "receipts_per_s",
        "end_to_end_per_s",
    }
    assert set(data["latency_ms"]["accept (HTTP request)"]) == {"n", "p50", "p95", "p99", "max"}
    assert data["processes"] == [{"name": "gateway", "cpu_s": 3.5, "peak_rss_mb": 180.0}]
    assert data["raw_ceiling"]["messages_per_s"] == 2000.0
    assert data["fraction_of_raw"] == pytest.approx(0.3) and data["ok"] is True


def test_the_table_names_every_figure() -> None:
    table = render(_report(errors={"HTTP 500": 2}, not_final=5, simulator={"receipts_sent": 9}))
    for text in ("accepted/s", "submitted/s", "receipts/s", "end to end/s",
                 "raw SMPP ceiling", "30.0% of it", "p99", "gateway", "HTTP 500 2",
                 "not final: 5", "simulator: receipts_sent 9", "NOT OK"):  # fmt: skip
        assert text in table


def test_bodies_cover_every_number_once_in_batches() -> None:
    template = item_template(scenarios.SHORT_TEXT, "921", "bulk")
    made = list(bodies(2500, 1000, template))
    assert [n for _, n in made] == [1000, 1000, 500]
    numbers = [m["to"] for body, _ in made for m in json.loads(body)["messages"]]
    assert numbers == [f"+7921{i:07d}" for i in range(2500)]


def test_a_single_message_body_is_the_message_itself() -> None:
    [(body, n)] = list(bodies(1, 1, item_template(scenarios.OTP_TEXT, "903", "otp")))
    message = json.loads(body)
    assert n == 1 and message["priority"] == "otp" and message["to"] == "+79030000000"
    assert message["text"] == scenarios.OTP_TEXT.replace("{n}", "000000")


def test_the_texts_take_the_parts_the_scenarios_promise() -> None:
    assert analyse(scenarios.sample_text(SCENARIOS["long"])).parts == 3
    assert analyse(scenarios.sample_text(SCENARIOS["single"])).parts == 1
    assert analyse(scenarios.OTP_TEXT.replace("{n}", "123456")).parts == 1


def test_overrides_change_only_what_is_given() -> None:
    single = SCENARIOS["single"]
    changed = with_overrides(single, 300, None, 500.0)
    assert (changed.count, changed.concurrency, changed.rate) == (300, 64, 500.0)
    assert with_overrides(single, None, None, None) == single


def test_every_scenario_of_the_issue_exists() -> None:
    assert set(SCENARIOS) == {"single", "batch", "otp-under-bulk", "long", "throttled", "backlog"}
    assert SCENARIOS["single"].path == "/v1/messages" and SCENARIOS["single"].callbacks
    assert SCENARIOS["batch"].batch == 1000 and SCENARIOS["batch"].count == 1_000_000
    assert "--throttle-ratio" in SCENARIOS["throttled"].smsc_args
    assert SCENARIOS["backlog"].providers_late


def test_the_median_of_three_runs_takes_each_figure_apart() -> None:
    runs = [
        figures(_report(rates=Rates(900.0, 800.0, 700.0, e2e), accepted=1000))
        for e2e in (600.0, 300.0, 900.0)
    ]
    found = medians(runs)
    assert found["end to end/s"] == (600.0, [600.0, 300.0, 900.0])
    assert found["gateway CPU µs/msg"][0] == pytest.approx(3500.0)  # 3.5 s over 1000
    assert found["accept (HTTP request) p99 ms"][0] == 3.0
    assert "median of 3 runs" in render_medians("batch", found)


def test_a_figure_missing_from_one_run_is_left_out_of_the_medians() -> None:
    empty = figures(_report(latency_ms={"accept (HTTP request)": spread([])}))
    found = medians([figures(_report()), empty])
    assert "accept (HTTP request) p50 ms" not in found
    assert "end to end/s" in found
