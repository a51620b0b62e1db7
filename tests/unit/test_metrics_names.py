"""Metric declarations: conventional names and units, bounded labels, correct rendering.

The recorder is exercised here without Redis: ``take`` gives what a flush would add to
the shared totals, and ``TotalsCollector`` renders totals as any process's scrape does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from gateway import metrics
from gateway.core.masking import find_phones
from gateway.metrics import families, gauges, recorder
from gateway.metrics.recorder import Counter, Histogram

_NAME = re.compile(r"smsgw_[a-z][a-z0-9_]*")
_LABEL = re.compile(r"[a-z][a-z0-9_]*")
_FORBIDDEN_UNITS = ("_ms", "_milliseconds", "_minutes", "_hours", "_kb", "_mb", "_percent")


Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def _render(totals: Mapping[Any, float]) -> Samples:
    text = metrics.render([metrics.TotalsCollector(totals)]).decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def test_names_are_conventional_and_declared_once() -> None:
    names = [d.name for d in recorder.DECLARED] + list(gauges.GAUGE_NAMES)
    assert len(names) == len(set(names))
    for declared in recorder.DECLARED:
        assert _NAME.fullmatch(declared.name), declared.name
        assert not declared.name.endswith(_FORBIDDEN_UNITS), declared.name
        assert all(_LABEL.fullmatch(label) for label in declared.labels)
        assert "le" not in declared.labels and declared.doc
        if isinstance(declared, Counter):
            assert declared.name.endswith("_total"), declared.name
        else:
            assert declared.name.endswith("_seconds"), declared.name
            assert list(declared.buckets) == sorted(declared.buckets)


def test_no_label_can_name_a_person_or_a_client() -> None:
    personal = {"to", "destination", "phone", "number", "text", "client", "client_id", "ref"}
    for declared in recorder.DECLARED:
        assert not personal & set(declared.labels), declared.name


def test_counters_sum_and_render_with_their_labels() -> None:
    recorder.take()  # whatever other tests in this process left
    families.MESSAGES.inc("delivered", "smsc-a", by=3)
    families.MESSAGES.inc("delivered", "smsc-a", by=2)
    families.MESSAGES.inc("submitted", "smsc-b")
    samples = _render(recorder.take())
    delivered = (("provider", "smsc-a"), ("status", "delivered"))
    assert samples["smsgw_messages_total"][delivered] == 5
    assert samples["smsgw_messages_total"][(("provider", "smsc-b"), ("status", "submitted"))] == 1
    assert samples["smsgw_retention_runs_total"][()] == 0  # label-free: a series from the start


def test_histograms_are_cumulative_with_sum_and_count() -> None:
    recorder.take()
    families.SUBMIT_LATENCY.observe_many([0.0005, 0.003, 0.003, 0.04, 20.0], "smsc")
    samples = _render(recorder.take())
    buckets = {
        dict(labels)["le"]: v
        for labels, v in samples["smsgw_submit_latency_seconds_bucket"].items()
    }
    assert buckets["0.001"] == 1 and buckets["0.005"] == 3 and buckets["0.05"] == 4
    assert buckets["10.0"] == 4 and buckets["+Inf"] == 5
    assert samples["smsgw_submit_latency_seconds_count"][(("provider", "smsc"),)] == 5
    assert samples["smsgw_submit_latency_seconds_sum"][(("provider", "smsc"),)] == pytest.approx(
        20.0465
    )


def test_a_failed_flush_gives_its_deltas_back() -> None:
    recorder.take()
    families.COST.inc("smsc", by=1.5)
    taken = recorder.take()
    families.COST.inc("smsc", by=0.5)
    recorder.give_back(taken)
    assert recorder.take() == {("smsgw_cost_total", "", ("smsc",)): 2.0}


def test_wrong_label_count_is_refused() -> None:
    with pytest.raises(ValueError):
        families.MESSAGES.inc("delivered")
    with pytest.raises(ValueError):
        families.SUBMIT_LATENCY.observe(0.1)


def test_fields_of_another_version_are_left_out() -> None:
    totals = {("smsgw_messages_total", "", ("delivered",)): 1.0, ("gone_total", "", ()): 1.0}
    assert "smsgw_messages_total" not in _render(totals)


def test_throttling_is_told_apart_from_other_errors() -> None:
    recorder.take()
    families.count_submit_error("smsc", "0x00000058", permanent=False)
    families.count_submit_error("smsc", "smpp_timeout", permanent=False)
    families.count_submit_error("smsc", "0x0000000b", permanent=True)
    kinds = {(values[1], values[2]) for _, _, values in recorder.take()}
    assert kinds == {
        ("throttled", "0x00000058"),
        ("temporary", "smpp_timeout"),
        ("permanent", "0x0000000b"),
    }


@given(st.text(max_size=60))
def test_an_error_code_label_never_holds_a_number_and_stays_short(code: str) -> None:
    label = families.code_label(code)
    assert len(label) <= 40
    assert next(find_phones(label), None) is None


@pytest.mark.parametrize(
    "code", ["79211234567", "+79211234567", "8 (921) 123-45-67", "refused: +7 921 123 45 67"]
)
def test_a_code_quoting_a_number_becomes_other(code: str) -> None:
    assert families.code_label(code) == "other"


@pytest.mark.parametrize("code", ["0x00000058", "smpp_timeout", "http:INVALID_NUMBER", "429"])
def test_plain_codes_are_kept(code: str) -> None:
    assert families.code_label(code) == code


def test_every_family_is_rendered_even_without_samples() -> None:
    text = metrics.render([metrics.TotalsCollector({})]).decode()
    for declared in recorder.DECLARED:
        kind = "counter" if isinstance(declared, Counter) else "histogram"
        bare = declared.name.removesuffix("_total") if kind == "counter" else declared.name
        assert f"# TYPE {bare} {kind}" in text or f"# TYPE {declared.name} {kind}" in text
    assert isinstance(families.SUBMIT_LATENCY, Histogram)
