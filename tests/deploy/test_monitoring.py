"""Dashboards, alerting rules and autoscaling queries refer only to metrics (and labels) the code
exports: the inference pod's /metrics exposition, read from its own registry, plus the target
labels the scrape configuration attaches."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .chart import by_kind, render
from .conftest import CHART, ROOT
from .promql import Usage, expand_grafana, usage

DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))
# Labels Prometheus attaches to every scraped series (the relabelling in the chart's scrape config,
# the compose prometheus.yml and the ServiceMonitor): checked against those configs below.
TARGET_LABELS = {
    "namespace",
    "pod",
    "job",
    "instance",
    "voiceflow_io_model",
    "voiceflow_io_role",
    "voiceflow_io_version",
}


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    """Sample name -> label names, from the inference pod's own /metrics exposition."""
    metrics_mod = pytest.importorskip("inference_pod.metrics")
    from prometheus_client.parser import text_string_to_metric_families

    m = metrics_mod.Metrics()
    m.set_model("1.0.0", "0" * 64)
    m.latency.labels(endpoint="stream").observe(0.1)
    m.errors.labels(code="overloaded").inc()
    m.batch_size.observe(4)
    body, _ = m.exposition()
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, set()).update(sample.labels)
    # Every family the pod declares as its contract is in the exposition.
    for name in metrics_mod.METRIC_NAMES:
        assert any(s == name or s.startswith(name + "_") for s in out), name
    return out


def dashboard_exprs() -> list[tuple[str, str]]:
    out = []
    for path in DASHBOARDS:
        dash = json.loads(path.read_text())
        for panel in dash["panels"]:
            for target in panel.get("targets", []):
                if "expr" in target:
                    out.append((f"{path.name}: {panel['title']}", expand_grafana(target["expr"])))
        for var in dash["templating"]["list"]:
            if var["type"] == "query":
                m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", var["query"]["query"])
                assert m, var["query"]
                out.append((f"{path.name}: ${var['name']}", expand_grafana(m.group(1))))
    return out


def chart_exprs(helm_bin: str) -> list[tuple[str, str]]:
    out = []
    for combo in ("default", "monitoring-operator", "keda", "prometheus-adapter"):
        objects = render(helm_bin, combo)
        for rule_obj in by_kind(objects, "PrometheusRule"):
            for group in rule_obj["spec"]["groups"]:
                out += [(f"{combo}: {r['alert']}", r["expr"]) for r in group["rules"]]
        for cm in by_kind(objects, "ConfigMap"):
            if "alerts.yml" in cm["data"]:
                for group in yaml.safe_load(cm["data"]["alerts.yml"])["groups"]:
                    out += [(f"{combo}: {r['alert']}", r["expr"]) for r in group["rules"]]
            if "config.yaml" in cm["data"]:  # prometheus-adapter rules
                for rule in yaml.safe_load(cm["data"]["config.yaml"])["rules"]:
                    out.append((f"{combo}: adapter seriesQuery", rule["seriesQuery"]))
                    q = rule["metricsQuery"].replace("<<.Series>>", "inference_latency_seconds_bucket")
                    q = q.replace("<<.LabelMatchers>>", 'namespace="x"').replace("<<.GroupBy>>", "pod")
                    out.append((f"{combo}: adapter metricsQuery", q))
        for so in by_kind(objects, "ScaledObject"):
            out += [(f"{combo}: KEDA trigger", t["metadata"]["query"]) for t in so["spec"]["triggers"]]
    return out


def check(where: str, use: Usage, exported: dict[str, set[str]]) -> None:
    for metric in use.metrics:
        assert metric in exported, f"{where}: {metric} is not exported by the inference pod"
        unknown = use.matchers[metric] - exported[metric] - TARGET_LABELS
        assert not unknown, f"{where}: {metric} has no label {sorted(unknown)}"
    known = set().union(*(exported[m] for m in use.metrics)) | TARGET_LABELS if use.metrics else TARGET_LABELS
    assert use.grouping <= known, f"{where}: groups by unknown labels {sorted(use.grouping - known)}"


def test_dashboard_queries_use_only_exported_metrics(exported: dict[str, set[str]]) -> None:
    exprs = dashboard_exprs()
    assert len(exprs) > 20
    for where, expr in exprs:
        check(where, usage(expr), exported)


def test_alert_and_autoscaling_queries_use_only_exported_metrics(helm_bin: str, exported: dict[str, set[str]]) -> None:
    exprs = chart_exprs(helm_bin)
    kinds = {where.split(": ", 1)[1].split()[0] for where, _ in exprs}
    assert {"KEDA", "adapter", "VoiceFlowP99LatencyHigh", "VoiceFlowCanaryLatencyRegression"} <= kinds
    for where, expr in exprs:
        check(where, usage(expr), exported)


def test_operator_queries_use_only_exported_metrics(exported: dict[str, set[str]]) -> None:
    auto = pytest.importorskip("voiceflow_operator.builders.autoscaling")
    check("operator KEDA query", usage(auto.p99_query("m", "ns", "stable")), exported)


def test_operator_canary_queries_use_only_exported_labels(exported: dict[str, set[str]]) -> None:
    prom = pytest.importorskip("voiceflow_operator.prometheus")
    sel = prom.SELECTOR.format(ns="ns", model="m")
    for name in ("ERROR_RATE", "P99"):
        check(f"operator canary {name}", usage(getattr(prom, name).format(sel=sel)), exported)


def test_target_labels_come_from_the_scrape_configs(helm_bin: str) -> None:
    """The voiceflow_io_* labels the queries use exist: pod labels -> labelmap / podTargetLabels."""
    (cm,) = [
        c for c in by_kind(render(helm_bin, "default"), "ConfigMap") if c["metadata"]["name"].endswith("-prometheus")
    ]
    (job,) = yaml.safe_load(cm["data"]["scrape-config.yml"])
    targets = {r["target_label"] for r in job["relabel_configs"] if "target_label" in r}
    assert {"namespace", "pod"} <= targets
    (labelmap,) = [r for r in job["relabel_configs"] if r.get("action") == "labelmap"]
    pod_labels = set()
    (inference,) = [
        d for d in by_kind(render(helm_bin, "default"), "Deployment") if d["metadata"]["name"].endswith("-inference")
    ]
    pod_labels |= set(inference["spec"]["template"]["metadata"]["labels"])
    common = pytest.importorskip("voiceflow_operator.builders.common")
    from voiceflow_operator.constants import LABEL_VERSION

    owner = common.Owner("m", "ns", "uid")
    operator_pod_labels = set(common.labels(owner, "stable", "1.0.0"))
    assert LABEL_VERSION in operator_pod_labels
    for label in operator_pod_labels | pod_labels:
        sanitized = re.sub(r"[^a-zA-Z0-9_]", "_", label)
        if re.fullmatch(labelmap["regex"].replace("__meta_kubernetes_pod_label_", ""), sanitized):
            assert sanitized in TARGET_LABELS
    mapped = {re.sub(r"[^a-zA-Z0-9_]", "_", lbl) for lbl in operator_pod_labels}
    assert {"voiceflow_io_model", "voiceflow_io_role", "voiceflow_io_version"} <= mapped
    (sm,) = by_kind(render(helm_bin, "monitoring-operator"), "ServiceMonitor")
    assert {re.sub(r"[^a-zA-Z0-9_]", "_", lbl) for lbl in sm["spec"]["podTargetLabels"]} == {
        "voiceflow_io_model",
        "voiceflow_io_role",
        "voiceflow_io_version",
    }


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for expr in selector.get("matchExpressions", []):
        value = labels.get(expr["key"])
        if expr["operator"] == "In" and value not in expr["values"]:
            return False
        if expr["operator"] == "NotIn" and value in expr["values"]:
            return False
    return selector.get("matchLabels", {}).items() <= labels.items()


def test_service_monitor_selects_inference_services_only(helm_bin: str) -> None:
    objects = render(helm_bin, "monitoring-operator")
    (sm,) = by_kind(objects, "ServiceMonitor")
    services = {s["metadata"]["name"]: s for s in by_kind(objects, "Service")}
    selected = {n for n, s in services.items() if _matches(sm["spec"]["selector"], s["metadata"]["labels"])}
    assert selected == {"vf-voiceflow-inference"}
    streaming = pytest.importorskip("voiceflow_operator.builders.streaming")
    common = pytest.importorskip("voiceflow_operator.builders.common")
    op_svc = streaming.build_service(common.Owner("m", "ns", "uid"), "m-stable", "stable")
    assert _matches(sm["spec"]["selector"], op_svc["metadata"]["labels"]), "operator Services are not scraped"
    ports = {p["name"] for p in op_svc["spec"]["ports"]} & {
        p["name"] for p in services["vf-voiceflow-inference"]["spec"]["ports"]
    }
    assert [e["port"] for e in sm["spec"]["endpoints"]] == ["http"] and "http" in ports
    assert sm["spec"]["namespaceSelector"] == {"any": True}


def test_alert_rules_are_well_formed(helm_bin: str) -> None:
    (rule_obj,) = by_kind(render(helm_bin, "monitoring-operator"), "PrometheusRule")
    alerts = [r for g in rule_obj["spec"]["groups"] for r in g["rules"]]
    names = [r["alert"] for r in alerts]
    assert len(names) == len(set(names))
    for wanted in (
        "P99LatencyHigh",
        "ErrorRateHigh",
        "CanaryLatencyRegression",
        "CanaryErrorRegression",
        "ModelNotReady",
    ):
        assert f"VoiceFlow{wanted}" in names
    for r in alerts:
        assert r["labels"]["severity"] in {"warning", "critical"}
        assert r["annotations"]["summary"] and r["annotations"]["description"]
        assert re.fullmatch(r"\d+[smh]", r.get("for", "0s")), r
    # Values reach the thresholds.
    (p99,) = [r for r in alerts if r["alert"] == "VoiceFlowP99LatencyHigh"]
    assert p99["expr"].rstrip().endswith("> 0.3")


def test_compose_alerts_are_the_chart_defaults(helm_bin: str) -> None:
    (cm,) = [c for c in by_kind(render(helm_bin, "default"), "ConfigMap") if "alerts.yml" in c["data"]]
    compose_rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    assert compose_rules == yaml.safe_load(cm["data"]["alerts.yml"]), (
        "regenerate deploy/prometheus/alerts.yml from the chart (see its header)"
    )


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    dash = json.loads(path.read_text())
    assert dash["uid"].startswith("voiceflow-") and dash["title"].startswith("VoiceFlow / ")
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dash["templating"]["list"]}
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"].strip("${}") in variables, panel["title"]
        assert panel["targets"], panel["title"]
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24
    # Every dashboard ships as a ConfigMap too (one per file).


def test_dashboards_ship_as_configmaps(helm_bin: str) -> None:
    cms = [
        c
        for c in by_kind(render(helm_bin, "default"), "ConfigMap")
        if c["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    shipped = {k: v for c in cms for k, v in c["data"].items()}
    assert set(shipped) == {p.name for p in DASHBOARDS}
    for p in DASHBOARDS:
        assert json.loads(shipped[p.name]) == json.loads(p.read_text())


def test_realtime_dashboard_compares_stable_and_canary() -> None:
    dash = json.loads((CHART / "dashboards" / "voiceflow-realtime-inference.json").read_text())
    titles = " ".join(p["title"] for p in dash["panels"])
    for word in ("P50", "P99", "Throughput", "Error rate", "Active streams", "model versions"):
        assert word in titles
    for panel in dash["panels"][:4]:
        assert "voiceflow_io_role" in panel["targets"][0]["expr"]


def test_model_performance_sql_uses_the_registry_schema() -> None:
    models = pytest.importorskip("control_api.models")
    table = models.RegistryModel.__table__
    dash = json.loads((CHART / "dashboards" / "voiceflow-model-performance.json").read_text())
    sql = [t["rawSql"] for p in dash["panels"] for t in p["targets"] if "rawSql" in t]
    assert sql
    for query in sql:
        assert f"FROM {table.name} " in query
        unquoted = re.sub(r"'[^']*'", "''", query)
        select, rest = unquoted.removeprefix("SELECT ").split(" FROM ", 1)
        order = rest.split("ORDER BY", 1)[1] if "ORDER BY" in rest else ""
        columns = set()
        for item in [*select.split(","), *order.split(",")]:
            expr = re.sub(r"\s+AS\s+\w+\s*$", "", item.strip())  # drop the alias
            expr = re.sub(r"\bAS\s+DOUBLE PRECISION\b|\b(CAST|DESC|ASC)\b", "", expr)
            columns |= set(re.findall(r"\b([a-z_]+)\b", expr))
        assert {"name", "version", "metrics"} <= columns
        assert columns <= set(table.c.keys()), columns - set(table.c.keys())


@pytest.mark.parametrize(
    "expr",
    [
        "rate(inference_latency_total[5m])",  # no such metric
        'sum(rate(inference_requests_total{outcome="error"}[5m]))',  # no such label
        "sum by (model) (inference_streams_active)",  # no such grouping label
    ],
)
def test_the_check_rejects_what_the_pod_does_not_export(expr: str, exported: dict[str, set[str]]) -> None:
    with pytest.raises(AssertionError):
        check("negative", usage(expr), exported)
