"""The chart follows Helm conventions: serviceAccount.create/name/annotations, podAnnotations, extraEnv,
nodeSelector/tolerations/affinity, an optional ingress, and NOTES whose commands name what it creates."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from .chart import (
    COMBOS,
    RELEASE,
    by_kind,
    crd_schema,
    pod_spec,
    refusal,
    render,
    render_notes,
    validate_object,
)
from .conftest import CHART

WORKLOADS = {"operator": "operator", "control-api": "controlApi", "inference": "inference"}
TOLERATION = {"key": "dedicated", "operator": "Equal", "value": "voice", "effect": "NoSchedule"}
AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]
        }
    }
}


def render_with(helm_bin: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The default combination rendered with `values` (dotted keys, as `--set-json` takes them)."""
    sets = tuple(arg for key, value in values.items() for arg in ("--set-json", f"{key}={json.dumps(value)}"))
    return render(helm_bin, "default", extra=sets)


def workloads(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in by_kind(objects, "Deployment")
        if d["metadata"]["labels"].get("app.kubernetes.io/component") in WORKLOADS
    }


def validate_all(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        if obj["kind"] != "ServiceMonitor":
            validate_object(obj, "1.33.0")


def test_top_level_defaults_reach_every_workload(helm_bin: str) -> None:
    objects = render_with(
        helm_bin,
        {
            "serviceAccount.annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/vf"},
            "podAnnotations": {"team": "speech"},
            "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}],
            "nodeSelector": {"pool": "cpu"},
            "tolerations": [TOLERATION],
            "affinity": AFFINITY,
        },
    )
    validate_all(objects)
    accounts = {a["metadata"]["name"]: a for a in by_kind(objects, "ServiceAccount")}
    found = workloads(objects)
    assert set(found) == set(WORKLOADS)
    for component, dep in found.items():
        spec = pod_spec(dep)
        account = spec["serviceAccountName"]
        assert account == f"{RELEASE}-voiceflow-{component}"
        annotations = accounts[account]["metadata"]["annotations"]
        assert annotations == {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/vf"}, component
        assert dep["spec"]["template"]["metadata"]["annotations"]["team"] == "speech", component
        (container,) = spec["containers"]
        assert {"name": "HTTPS_PROXY", "value": "http://proxy:3128"} in container["env"], component
        assert spec["nodeSelector"] == {"pool": "cpu"} and spec["tolerations"] == [TOLERATION], component
        assert spec["affinity"] == AFFINITY, component
    # The chart's own pod annotations survive beside the user's.
    assert "checksum/rbac" in found["operator"]["spec"]["template"]["metadata"]["annotations"]
    assert found["inference"]["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


def test_a_components_own_values_win_or_add(helm_bin: str) -> None:
    objects = render_with(
        helm_bin,
        {
            "podAnnotations": {"team": "speech"},
            "inference.podAnnotations": {"team": "realtime", "sidecar": "off"},
            "extraEnv": [{"name": "A", "value": "1"}],
            "inference.extraEnv": [{"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "nodeSelector": {"pool": "cpu"},
            "inference.nodeSelector": {"pool": "inference"},
            "inference.serviceAccount": {"name": "speech-reader", "annotations": {"x": "y"}},
        },
    )
    validate_all(objects)
    found = workloads(objects)
    inference = found["inference"]
    assert inference["spec"]["template"]["metadata"]["annotations"]["team"] == "realtime"
    assert inference["spec"]["template"]["metadata"]["annotations"]["sidecar"] == "off"
    names = [e["name"] for e in pod_spec(inference)["containers"][0]["env"]]
    assert names[-2:] == ["A", "B"]
    assert pod_spec(inference)["nodeSelector"] == {"pool": "inference"}
    assert pod_spec(found["operator"])["nodeSelector"] == {"pool": "cpu"}
    assert pod_spec(inference)["serviceAccountName"] == "speech-reader"
    (account,) = [a for a in by_kind(objects, "ServiceAccount") if a["metadata"]["name"] == "speech-reader"]
    assert account["metadata"]["annotations"] == {"x": "y"} and account["automountServiceAccountToken"] is False


def test_existing_service_accounts_are_used_and_bound(helm_bin: str) -> None:
    objects = render_with(
        helm_bin, {"serviceAccount.create": False, "operator.serviceAccount": {"name": "platform-operator"}}
    )
    validate_all(objects)
    chart_accounts = {a["metadata"]["name"] for a in by_kind(objects, "ServiceAccount")}
    assert chart_accounts == {"voiceflow-workflow"}, "only the operator's fixed workflow account remains"
    found = workloads(objects)
    assert pod_spec(found["operator"])["serviceAccountName"] == "platform-operator"
    assert pod_spec(found["control-api"])["serviceAccountName"] == "default"
    bindings = by_kind(objects, "ClusterRoleBinding") + by_kind(objects, "RoleBinding")
    subjects = {(b["metadata"]["name"], s["name"]) for b in bindings for s in b["subjects"]}
    assert (f"{RELEASE}-voiceflow-operator", "platform-operator") in subjects
    assert (f"{RELEASE}-voiceflow-control-api", "default") in subjects, "the registry's RBAC follows its account"


def test_one_shared_account_name_needs_create_false(helm_bin: str) -> None:
    stderr = refusal(helm_bin, "--set", "serviceAccount.name=shared")
    assert "serviceAccount.create=false" in stderr, stderr


def test_ingress_routes_to_the_charts_services(helm_bin: str) -> None:
    assert not by_kind(render(helm_bin, "default"), "Ingress"), "off by default"
    objects = render_with(
        helm_bin,
        {
            "ingress.enabled": True,
            "ingress.className": "nginx",
            "ingress.annotations": {"nginx.ingress.kubernetes.io/proxy-read-timeout": "3600"},
            "ingress.tls": [{"secretName": "vf-tls", "hosts": ["voiceflow.example.com"]}],
        },
    )
    (ingress,) = by_kind(objects, "Ingress")
    validate_object(ingress, "1.33.0")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    services = {s["metadata"]["name"]: {p["port"] for p in s["spec"]["ports"]} for s in by_kind(objects, "Service")}
    backends = [
        (rule["host"], path["backend"]["service"])
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert [(host, svc["name"]) for host, svc in backends] == [
        ("voiceflow.example.com", f"{RELEASE}-voiceflow-inference"),
        ("api.voiceflow.example.com", f"{RELEASE}-voiceflow-control-api"),
    ]
    for _, svc in backends:
        assert svc["port"]["number"] in services[svc["name"]]
    refused = refusal(helm_bin, "--set", "ingress.enabled=true", combo="streaming-only")
    assert "controlApi, which this release does not deploy" in refused, refused


# --- NOTES.txt: every name it tells the user to type exists in what the chart renders -------------

NOTES_COMBOS = ["default", "keda", "prometheus-adapter", "monitoring-operator", "external-db", "streaming-only"]


@pytest.mark.parametrize("combo", NOTES_COMBOS)
def test_notes_name_only_what_the_chart_creates(helm_bin: str, combo: str, tmp_path: Path) -> None:
    notes = render_notes(helm_bin, combo, tmp_path)
    objects = render(helm_bin, combo)
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    kinds = {"svc": "Service", "secret": "Secret", "ConfigMap": "ConfigMap", "ServiceMonitor": "ServiceMonitor"}
    kinds |= {"HorizontalPodAutoscaler": "HorizontalPodAutoscaler", "ScaledObject": "ScaledObject"}
    mentioned = re.findall(
        r"\b(svc/|secret |ConfigMap |ServiceMonitor |HorizontalPodAutoscaler\s+|ScaledObject )([\w.-]+)", notes
    )
    assert mentioned, notes
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for combo_file in COMBOS[combo]:
        values.update(yaml.safe_load((CHART / combo_file).read_text()))
    external = {(values.get("controlApi") or {}).get("existingSecret")} - {None, ""}
    for word, name in mentioned:
        kind = kinds[word.strip().rstrip("/")]
        if kind == "Secret" and name in external:
            continue  # the user's own Secret
        assert (kind, name) in names, f"NOTES names {kind} {name}, which {combo} does not render"
    # `rollout status deploy -l <selector>` finds the chart's Deployments.
    (selector,) = re.findall(r"rollout status deploy -l (\S+)", notes)
    key, value = selector.split("=")
    assert [d for d in by_kind(objects, "Deployment") if d["metadata"]["labels"].get(key) == value]
    # What NOTES applies comes with it (stdin) or from the chart itself: a user of the packaged chart
    # has no repository checkout, and an air-gapped cluster no github.com.
    for source in re.findall(r"kubectl apply [^|\n]*?-f (\S+)", notes):
        assert source == "-", f"NOTES applies {source}, which the chart's user does not have"
    hosts = {urlsplit(url).hostname or "" for url in re.findall(r"\b(?:https?|wss?)://[^\s'\"]+", notes)}
    outside = {h for h in hosts if h != "localhost" and not h.endswith((".svc", ".svc.cluster.local"))}
    assert not outside, f"NOTES sends the user outside the cluster: {outside}"
    if "operator" in workloads(objects):
        assert "kubectl get dm" in notes
        (crd,) = by_kind(objects, "CustomResourceDefinition")
        assert "dm" in crd["spec"]["names"]["shortNames"]
        check_notes_resource(notes, names)


def check_notes_resource(notes: str, names: set[tuple[str, str]]) -> None:
    """The DiarizationModel NOTES pipes into `kubectl apply` is one the CRD admits, writing its model
    into the model store the chart created."""
    (block,) = re.findall(r"cat <<'EOF' \| kubectl apply[^\n]*\n(.*?)\n\s*EOF", notes, re.S)
    resource = yaml.safe_load("\n".join(line[5:] for line in block.splitlines()))
    assert resource["kind"] == "DiarizationModel"
    jsonschema.Draft4Validator(crd_schema("voiceflow.io", "DiarizationModel")["v1alpha1"]).validate(resource)
    assert ("training" in resource["spec"]) != ("model" in resource["spec"])  # the CRD's CEL rule
    presets = pytest.importorskip("pipelines.training.config").preset_names()
    assert resource["spec"]["training"]["preset"] in presets, "a preset the pipelines image has"
    artifacts = resource["spec"]["training"].get("artifacts")
    if artifacts:
        claim = artifacts.removeprefix("pvc://").split("/")[0]
        assert ("PersistentVolumeClaim", claim) in names
