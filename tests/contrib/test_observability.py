"""The Prometheus collector's families, and the Grafana dashboard and alert rules in contrib/.

The dashboard's and the rules' queries may only name metrics that a real,
exercised client exports (samples, not just descriptions); the rules are
checked against a schema here and, where ``promtool`` is installed (``.ci/run``
installs it), parsed and unit-tested by it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from maxsdk import Client, signals
from maxsdk.prometheus import ClientCollector
from tests.client.helpers import Inbox, SignalLog, fast_client

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"
DASHBOARD = CONTRIB / "grafana" / "maxsdk-dashboard.json"
RULES = CONTRIB / "prometheus" / "maxsdk-alerts.yml"
RULE_TESTS = CONTRIB / "prometheus" / "maxsdk-alerts.test.yml"
METRIC = re.compile(r"\bmaxsdk_[a-z0-9_]+\b")
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (.ci/run installs it)")


def scrape(client: Client, **options: Any) -> str:
    registry = CollectorRegistry()
    registry.register(ClientCollector(client, **options))
    return generate_latest(registry).decode()


def sample_names(text: str) -> set[str]:
    """Names of the samples present in an exposition (families without samples do not count)."""
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


@pytest.fixture
def exercised(phoenix_server: Any, tmp_path: Path) -> Any:
    """A client that has pushed, received, lost a heartbeat, reconnected and dead-lettered."""
    client = fast_client(
        phoenix_server.url, name="orders", heartbeat_interval=0.2, heartbeat_timeout=1.0, outbox=tmp_path / "outbox"
    )
    log = SignalLog(client, extra=[signals.outbox_dead_lettered])
    with client:
        room = client.join("room:lobby")
        echo = client.join("echo:one")
        inbox = Inbox()
        room.on("flood_msg", inbox)
        room.push("flood", {"n": 5, "size": 10})
        inbox.wait_count(5)
        for n in range(3):
            echo.push("anything", {"n": n})
        with pytest.raises(Exception, match="nope"):
            room.push("echo_error", {"reason": "nope"})
        room.send("echo_error", {"reason": "refused"})
        log.wait_for("outbox_dead_lettered")
        log.wait_for("heartbeat")
        phoenix_server.pause_heartbeats()
        assert log.wait_for("disconnected")["reason"] == "heartbeat_timeout"
        phoenix_server.resume_heartbeats()
        log.wait_for("channel_joined", lambda kw: kw["rejoined"] and kw["channel"].topic == "room:lobby")
        yield client


def test_per_channel_counters_byte_rates_and_heartbeat_timeouts(exercised: Client) -> None:
    stats = exercised.stats()
    assert stats.heartbeat_timeouts == 1
    assert stats.messages_by_topic["room:lobby"] >= 5 and "echo:one" not in stats.messages_by_topic
    assert stats.replies_by_topic["echo:one"] == {"ok": 3}
    assert stats.replies_by_topic["room:lobby"]["error"] == 2  # the push and the durable send
    assert stats.bytes_in_per_s > 0 and stats.bytes_out_per_s > 0
    text = scrape(exercised)
    assert sample(text, "maxsdk_heartbeat_timeouts_total", client="orders") == 1
    assert sample(text, "maxsdk_channel_replies_total", client="orders", topic="echo:one", status="ok") == 3
    assert sample(text, "maxsdk_channel_replies_total", topic="room:lobby", status="error") == 2
    assert sample(text, "maxsdk_channel_messages_total", topic="room:lobby") >= 5
    assert sample(text, "maxsdk_outbox_dead_letters", client="orders") == 1
    assert sample(text, "maxsdk_outbox_dead_lettered_total", client="orders") == 1
    assert sample(text, "maxsdk_outbox_oldest_age_seconds", client="orders") == 0  # nothing waiting
    assert sample(text, "maxsdk_reconnects_total", client="orders") == 1


def test_per_channel_families_can_be_left_out(exercised: Client) -> None:
    names = sample_names(scrape(exercised, per_channel=False))
    assert "maxsdk_replies_total" in names
    assert not {name for name in names if name.startswith("maxsdk_channel_")}


def test_a_client_without_an_outbox_exports_no_outbox_samples(phoenix_server: Any) -> None:
    with fast_client(phoenix_server.url) as client:
        client.join("room:lobby").push("echo", {})
        text = scrape(client)
    assert not {name for name in sample_names(text) if name.startswith("maxsdk_outbox_")}
    assert "# TYPE maxsdk_outbox_dead_letters gauge" in text  # described all the same


# -- the Grafana dashboard ------------------------------------------------------------------------


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_dashboard_queries_name_only_exported_metrics(exercised: Client) -> None:
    exported = sample_names(scrape(exercised))
    queries = dashboard_queries()
    assert len(queries) >= 20
    for title, expr in queries:
        named = set(METRIC.findall(expr))
        assert named, (title, expr)
        assert named <= exported, f"panel {title!r} names metrics the collector does not export: {named - exported}"
    used = {name for _, expr in queries for name in METRIC.findall(expr)}
    # Everything the issue asks a dashboard to show is on it.
    for name in (
        "maxsdk_connected",
        "maxsdk_bytes_received_total",
        "maxsdk_bytes_sent_total",
        "maxsdk_channel_messages_total",
        "maxsdk_channel_replies_total",
        "maxsdk_push_latency_seconds_bucket",
        "maxsdk_heartbeat_rtt_seconds",
        "maxsdk_heartbeat_timeouts_total",
        "maxsdk_reconnects_total",
        "maxsdk_outbox_depth",
        "maxsdk_outbox_oldest_age_seconds",
        "maxsdk_outbox_dead_letters",
    ):
        assert name in used, name


def test_the_dashboard_is_an_importable_grafana_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "maxsdk-clients" and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["client"]["query"]["query"] == "label_values(maxsdk_connected, client)"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels), "panel ids are unique"
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["type"] in ("timeseries", "stat") and panel["description"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs)
        for target in panel["targets"]:
            assert 'client=~"$client"' in target["expr"], (panel["title"], target["expr"])


@needs_promtool
def test_the_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool checks expressions in rule files: wrap each query as a recording rule.
    rules = [
        {
            "record": f"maxsdk:dashboard_query_{n}",
            "expr": expr.replace("$__rate_interval", "5m").replace("$client", ".*"),
        }
        for n, (_, expr) in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


# -- the alert rules --------------------------------------------------------------------------------

_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def test_the_alert_rules_match_the_schema_and_name_exported_metrics(exercised: Client) -> None:
    exported = sample_names(scrape(exercised))
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    assert set(document) == {"groups"}
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert all(set(group) == {"name", "rules"} and group["name"] for group in document["groups"])
    names = [rule["alert"] for rule in rules]
    assert len(set(names)) == len(names), "alert names are unique"
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert re.fullmatch(r"Maxsdk[A-Z][A-Za-z]+", rule["alert"])
        assert "for" not in rule or _DURATION.match(rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert set(rule["annotations"]) == {"summary", "description"}
        named = set(METRIC.findall(rule["expr"]))
        assert named and named <= exported, f"{rule['alert']} names metrics not exported: {named - exported}"
    used = {name for rule in rules for name in METRIC.findall(rule["expr"])}
    # disconnected too long, reconnect storm, outbox depth and age, dead letters, reply errors, heartbeats
    assert {
        "maxsdk_connected",
        "maxsdk_reconnects_total",
        "maxsdk_outbox_depth",
        "maxsdk_outbox_oldest_age_seconds",
        "maxsdk_outbox_dead_lettered_total",
        "maxsdk_replies_total",
        "maxsdk_heartbeat_rtt_seconds",
        "maxsdk_heartbeat_timeouts_total",
    } <= used
    tested = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    covered = {case["alertname"] for test in tested["tests"] for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert covered == set(names), "every alert has a firing unit test"


@needs_promtool
def test_promtool_parses_the_alert_rules_and_their_unit_tests_pass() -> None:
    checked = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=RULE_TESTS.parent,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
