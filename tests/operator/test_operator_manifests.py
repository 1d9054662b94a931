"""Every child the operator renders is valid for the API server that will receive it:
built-in kinds with kubernetes-validate --strict against a pinned Kubernetes version, custom
kinds with jsonschema (and CEL) against the CRD schemas (ours and vendored)."""

from __future__ import annotations

import datetime as dt

import kubernetes_validate
import pytest
from vf_k8s_schema import VENDORED, validate_custom
from vf_scenarios import all_children, example_body
from voiceflow_operator.children import ref_of
from voiceflow_operator.constants import API_VERSION, KIND, SERVING_PORT
from voiceflow_operator.drift import HASH_ANNOTATION, needs_apply, with_hash
from voiceflow_operator.reconcile import decide

KUBERNETES_VERSION = "1.30.0"  # the oldest minor we support (PodLifecycleSleepAction is beta here)
BUILTIN = {"Deployment", "Service", "Job"}
EXAMPLES = ["train-streaming.yaml", "serve-existing-kserve.yaml", "minimal.yaml",
            "serve-segmentation-streaming.yaml"]


def _children() -> list[tuple[str, dict]]:
    return [
        (f"{ex}:{m['kind']}:{m['metadata']['name']}:{i}", m)
        for ex in EXAMPLES
        for i, m in enumerate(all_children(example_body(ex)))
    ]


CHILDREN = _children()


@pytest.mark.parametrize(("label", "manifest"), CHILDREN, ids=[c[0] for c in CHILDREN])
def test_child_is_valid(label: str, manifest: dict) -> None:
    manifest = with_hash(manifest)  # what is actually sent
    if manifest["kind"] in BUILTIN:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    else:
        assert (manifest["apiVersion"], manifest["kind"]) in VENDORED
        assert validate_custom(manifest) == []


def test_every_emitted_kind_is_covered() -> None:
    kinds = {m["kind"] for _, m in CHILDREN}
    assert kinds == {"Workflow", "Job", "Deployment", "Service", "HTTPRoute", "ScaledObject",
                     "InferenceService"}


@pytest.mark.parametrize(("label", "manifest"), CHILDREN, ids=[c[0] for c in CHILDREN])
def test_child_is_owned_by_its_model(label: str, manifest: dict) -> None:
    (ref,) = manifest["metadata"]["ownerReferences"]
    assert (ref["apiVersion"], ref["kind"], ref["controller"]) == (API_VERSION, KIND, True)
    assert ref["uid"] and manifest["metadata"]["namespace"]
    ref_of(manifest)  # every kind maps to a known resource


def test_serving_deployments_leave_replicas_to_the_autoscaler() -> None:
    for _, m in CHILDREN:
        if m["kind"] == "Deployment":
            assert "replicas" not in m["spec"]
            (c,) = m["spec"]["template"]["spec"]["containers"]
            assert c["ports"][0]["containerPort"] == SERVING_PORT
            assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
            assert c["livenessProbe"]["httpGet"]["path"] == "/health"


def test_http_route_weights_split_between_stable_and_canary() -> None:
    routes = [m for _, m in CHILDREN if m["kind"] == "HTTPRoute"]
    weights = [[b["weight"] for b in r["spec"]["rules"][0]["backendRefs"]] for r in routes]
    assert [90, 10] in weights and [100] in weights


def test_scaled_object_scales_on_p99_latency_value() -> None:
    so = next(m for _, m in CHILDREN if m["kind"] == "ScaledObject" and m["metadata"]["name"] == "meetings")
    trigger = so["spec"]["triggers"][0]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "Value"
    assert "inference_latency_seconds_bucket" in trigger["metadata"]["query"]
    assert trigger["metadata"]["threshold"] == "0.2"


def test_inference_service_canary_percent() -> None:
    isvcs = [m for _, m in CHILDREN if m["kind"] == "InferenceService"]
    assert [i["spec"]["predictor"].get("canaryTrafficPercent") for i in isvcs] == [None, 20]


def test_plans_from_decide_render_valid_children() -> None:
    body = example_body("train-streaming.yaml")
    plan = decide(body, {}, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    (wf,) = plan.ensure.values()
    assert wf["kind"] == "Workflow" and validate_custom(wf) == []


def test_drift_detection_uses_the_hash_annotation() -> None:
    _, m = CHILDREN[0]
    live = with_hash(m)
    assert live["metadata"]["annotations"][HASH_ANNOTATION]
    assert not needs_apply(m, live)
    live["metadata"]["annotations"][HASH_ANNOTATION] = "edited-by-hand"
    assert needs_apply(m, live) and needs_apply(m, None)


def test_validators_do_refuse_bad_manifests() -> None:
    """Negative controls: the checks above would catch a broken child."""
    deployment = next(m for _, m in CHILDREN if m["kind"] == "Deployment")
    bad = {**deployment, "spec": {**deployment["spec"], "replicaz": 3}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)
    route = next(m for _, m in CHILDREN if m["kind"] == "HTTPRoute")
    broken = {**route, "spec": {**route["spec"], "parentRefs": [{"name": "gw"}, {"name": "gw"}]}}
    assert validate_custom(broken)  # duplicate parentRefs: a CEL rule of the vendored CRD
    so = next(m for _, m in CHILDREN if m["kind"] == "ScaledObject")
    assert validate_custom({**so, "spec": {**so["spec"], "minReplicaCount": "one"}})


def _voiceflow_argvs() -> list[tuple[str, list[str]]]:
    out = []
    for label, m in CHILDREN:
        pod = m["spec"]["template"]["spec"] if m["kind"] in BUILTIN - {"Service"} else None
        if m["kind"] == "InferenceService":
            pod = m["spec"]["predictor"]
        for c in (pod or {}).get("containers", []):
            if c.get("command") == ["voiceflow"]:
                out.append((f"{label}/{c['name']}", c["args"]))
    return out


ARGVS = _voiceflow_argvs()


@pytest.mark.parametrize(("where", "args"), ARGVS, ids=[a[0] for a in ARGVS])
def test_every_container_runs_a_real_voiceflow_command(where: str, args: list[str]) -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflows"))
    from vf_cli_contract import check_argv

    check_argv(args, where)


def test_model_reaches_the_pod() -> None:
    deployments = [m for _, m in CHILDREN if m["kind"] == "Deployment"]
    s3 = [d for d in deployments if d["metadata"]["namespace"] == "voiceflow"]
    pod = s3[0]["spec"]["template"]["spec"]
    # s3:// models are fetched by the storage initializer into an emptyDir the server reads.
    assert pod["initContainers"][0]["args"] == ["s3://models/x/model.onnx", "/mnt/models"]
    assert pod["containers"][0]["args"][-2:] == ["--model", "/mnt/models/model.onnx"]
    job = next(m for _, m in CHILDREN if m["kind"] == "Job")
    volume = job["spec"]["template"]["spec"]["volumes"][0]
    assert volume["persistentVolumeClaim"]["claimName"] == "voiceflow-models"


def test_training_pods_run_as_the_workflow_service_account() -> None:
    """The ServiceAccount the Helm chart creates (with the Argo executor's Role) in each namespace."""
    from voiceflow_operator.constants import WORKFLOW_SERVICE_ACCOUNT

    workflows = [m for _, m in CHILDREN if m["kind"] == "Workflow"]
    jobs = [m for _, m in CHILDREN if m["kind"] == "Job"]
    assert workflows and jobs
    assert {w["spec"]["serviceAccountName"] for w in workflows} == {WORKFLOW_SERVICE_ACCOUNT}
    assert {j["spec"]["template"]["spec"]["serviceAccountName"] for j in jobs} == {WORKFLOW_SERVICE_ACCOUNT}


def test_every_serving_container_names_its_pipeline() -> None:
    pipelines = {}
    for label, m in CHILDREN:
        if m["kind"] == "Deployment" and m["metadata"]["labels"].get("voiceflow.io/role") in ("stable", "canary"):
            (c,) = m["spec"]["template"]["spec"]["containers"]
        elif m["kind"] == "InferenceService":
            (c,) = m["spec"]["predictor"]["containers"]
        else:
            continue
        (pipeline,) = [e["value"] for e in c["env"] if e["name"] == "VOICEFLOW_PIPELINE"]
        pipelines[label.split(":")[0]] = pipeline
    assert pipelines == {"train-streaming.yaml": "embedding", "serve-existing-kserve.yaml": "embedding",
                         "minimal.yaml": "embedding", "serve-segmentation-streaming.yaml": "segmentation"}
