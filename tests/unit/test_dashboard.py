"""The Grafana dashboard and the alert rules: well formed, and built on exported metrics.

The names are compared with what the collectors render (every family, empty or not);
tests/e2e/test_metrics.py compares them with a real gateway's scrape as well. The PromQL
is checked by ``promtool check rules`` (Debian's ``prometheus`` package) when installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway import metrics
from gateway.metrics import gauges

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "smsgw.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PANELS = {
    "Throughput",
    "Latency: accept → submitted, accept → delivered",
    "Provider submit latency",
    "Delivery ratio per provider",
    "Cost per provider (per hour)",
    "Submit errors and throttling by code",
    "Queue depth",
    "Oldest queued message",
    "Bind health",
    "Webhook backlog",
}
ALERT_NAMES = {
    "SmsgwProviderBindsDown",
    "SmsgwDeliveryRatioCollapse",
    "SmsgwQueueAgeHigh",
    "SmsgwWebhookBacklog",
}
_METRIC = re.compile(r"\bsmsgw_[a-z0-9_]+")
_GRAFANA_VARS = {"$__rate_interval": "5m", "$__range": "1h", "$provider": ".*"}


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def rules() -> list[dict[str, Any]]:
    return [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]


def all_exprs() -> list[str]:
    variable = dashboard()["templating"]["list"][1]["definition"]
    return [*dashboard_exprs(), variable, *(r["expr"] for r in rules())]


def names_in(exprs: Iterable[str]) -> set[str]:
    return {name for expr in exprs for name in _METRIC.findall(expr)}


def exported_names(scrape: str) -> set[str]:
    """Every sample name a scrape can hold, from its TYPE lines (empty families too)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", scrape, re.MULTILINE):
        bare = name.removesuffix("_total") if kind == "counter" else name
        names |= {bare + s for s in suffixes.get(kind, ("",))}
    return names


def collectors_scrape() -> str:
    live = {"smsc": {"name": "smsc", "ready": True, "gate": "closed"}}
    readings = metrics.Readings({"otp": gauges.Stream(0, 0.0)}, 0, 0.0, {})
    collectors = [
        metrics.PoolCollector(live),
        metrics.OtpCollector({}),
        metrics.TotalsCollector({}),
        metrics.GaugesCollector(readings),
    ]
    return metrics.render(collectors).decode()


def test_the_dashboard_is_grafana_39_with_the_variables_and_panels() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 39
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["provider"]["type"] == "query"
    assert {p["title"] for p in board["panels"]} >= PANELS
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"] and all(t["expr"] for t in panel["targets"])


def test_latency_panels_show_p50_p95_p99() -> None:
    exprs = " ".join(dashboard_exprs())
    for q in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({q}," in exprs


def test_alerts_cover_binds_ratio_queue_age_and_webhooks() -> None:
    found = rules()
    assert {r["alert"] for r in found} >= ALERT_NAMES
    for rule in found:
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["annotations"]["summary"]


def test_every_expression_names_only_exported_metrics() -> None:
    used = names_in(all_exprs())
    assert used, "no metric found in the expressions"
    assert used <= exported_names(collectors_scrape()), used - exported_names(collectors_scrape())


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_rules_and_the_dashboard_queries(tmp_path: Path) -> None:
    check = ["promtool", "check", "rules"]
    result = subprocess.run([*check, str(ALERTS)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    recorded = [
        {"record": f"smsgw:panel_{n}", "expr": _grafana_free(e)}
        for n, e in enumerate(dashboard_exprs())
    ]
    queries = tmp_path / "queries.yml"
    queries.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": recorded}]}))
    result = subprocess.run([*check, str(queries)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _grafana_free(expr: str) -> str:
    for variable, value in _GRAFANA_VARS.items():
        expr = expr.replace(variable, value)
    return expr
