"""The alerting rules and the Grafana dashboard that ship in deploy/: well-formed, in step, documented.

These are schema checks, run everywhere; deploy/check.sh also runs `promtool check rules` where promtool
is installed (Debian's `prometheus` package), which parses every expression as Prometheus does.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from tests.deploy.support import DEPLOY

RULES = DEPLOY / "monitoring" / "alerts.yaml"
PROMETHEUS_RULE = DEPLOY / "k8s" / "monitoring" / "prometheus-rule.yaml"
DASHBOARD = DEPLOY / "monitoring" / "grafana-dashboard.json"
OPERATIONS = DEPLOY.parent / "docs" / "operations.md"
# Alerts the issue asks for, by what they watch.
REQUIRED_ALERTS = {
    "HubHigh5xxRate",
    "HubHighP99Latency",
    "HubOutboxBacklogGrowing",
    "HubHistoryConsumerLag",
    "HubHistoryDeadLetters",
    "HubServiceWithoutReadyReplicas",
    "HubViewRepairs",
}
# Exported by kube-state-metrics, not by a service of ours.
EXTERNAL_METRICS = {"kube_deployment_status_replicas_available", "kube_deployment_spec_replicas"}

_PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "le", "inf", "nan",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (histogram series folded onto their family)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _PROMQL_WORDS or re.fullmatch(r"\d+\w*", name):
            continue
        names.add(
            re.sub(r"_(bucket|count|sum)$", "", name)
            if name.endswith(("_bucket", "_count", "_sum"))
            else name
        )
    return names


def rule_groups() -> list[dict[str, Any]]:
    """The groups of the plain rules file."""
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return groups


def dashboard_exprs() -> list[str]:
    """Every query of every panel of the dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def shipped_metric_names() -> set[str]:
    """Every metric the rules and the dashboard name, but kube-state-metrics' ones."""
    exprs = [rule["expr"] for group in rule_groups() for rule in group["rules"]] + dashboard_exprs()
    return {name for expr in exprs for name in metric_names(expr)} - EXTERNAL_METRICS


def test_the_rules_cover_every_case_and_are_well_formed() -> None:
    """Each alert asked for exists, with a duration `for`, a severity, a summary and a runbook link."""
    rules = [rule for group in rule_groups() for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} >= REQUIRED_ALERTS
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
        assert rule["annotations"]["runbook"] == f"docs/operations.md#{rule['alert'].lower()}"


def test_every_alert_has_a_runbook_section_in_operations() -> None:
    """docs/operations.md says what to do for every alert, under a heading its runbook link reaches."""
    headings = {
        line.lstrip("#").strip().lower()
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith("#")
    }
    for group in rule_groups():
        for rule in group["rules"]:
            assert rule["alert"].lower() in headings, rule["alert"]


def test_the_prometheus_rule_holds_the_same_groups_as_the_rules_file() -> None:
    """The Operator's PrometheusRule and the plain file cannot drift apart."""
    (resource,) = [doc for doc in yaml.safe_load_all(PROMETHEUS_RULE.read_text()) if doc]
    assert (resource["apiVersion"], resource["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert resource["spec"]["groups"] == rule_groups()


def test_the_dashboard_is_a_grafana_dashboard_over_the_shipped_metrics() -> None:
    """Every panel queries the chosen Prometheus data source, with unique ids and a non-empty expression."""
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "collections-hub"
    assert {v["name"] for v in dashboard["templating"]["list"]} >= {"datasource", "service"}
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) >= 10
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]
    assert shipped_metric_names() >= {
        "http_requests_total",
        "http_request_duration_seconds",
        "outbox_oldest_pending_age_seconds",
        "history_consumer_pending_messages",
        "history_events_dead_lettered_total",
        "auth_cache_lookups_total",
        "upstream_failures_total",
    }
