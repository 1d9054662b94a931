"""The pure parts: spec parsing, conditions, canary verdicts, naming, backoff, decide()."""

from __future__ import annotations

import datetime as dt

import pytest
from vf_scenarios import example_body
from voiceflow_operator import children as ch
from voiceflow_operator import naming
from voiceflow_operator.canary import CanaryMetrics, deployment_ready, judge_canary
from voiceflow_operator.conditions import set_condition
from voiceflow_operator.policy import Policy
from voiceflow_operator.rbac import rbac_rules
from voiceflow_operator.reconcile import backoff_seconds, decide, workflow_metrics
from voiceflow_operator.spec import (
    DEFAULT_PIPELINES_IMAGE,
    DEFAULT_SERVING_IMAGE,
    Canary,
    ImageDefaults,
    SpecError,
    parse_spec,
)

T0 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "spec.version is required"),
        ({"version": "1"}, "exactly one of"),
        ({"version": "1", "model": {"uri": "s3://m"}, "training": {"dataset": "s3://d"}}, "exactly one of"),
        ({"version": "1", "model": {"uri": "s3://m"}, "serving": {"mode": "grpc"}}, "streaming or kserve"),
        ({"version": "1", "model": {"uri": "s3://m"}, "serving": {"pipeline": "diart"}},
         "spec.serving.pipeline must be one of embedding, segmentation, embedding-overlap"),
        ({"version": "1", "model": {"uri": "s3://m"},
          "serving": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}}, "minReplicas"),
        ({"version": "1", "model": {"uri": "s3://m"}, "serving": {"canary": {"trafficPercent": 100}}},
         "trafficPercent"),
    ],
)
def test_invalid_specs_name_the_field(spec: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(spec)


def test_defaults_match_the_crd() -> None:
    body = example_body("minimal.yaml")  # defaulted by the CRD schema
    from_crd = parse_spec(body["spec"])
    from_code = parse_spec({k: body["spec"][k] for k in ("version", "training")})
    assert from_crd.serving == from_code.serving
    assert from_crd.training is not None and from_code.training is not None
    assert from_crd.training.image == from_code.training.image
    assert from_crd.training.max_retries == from_code.training.max_retries


def test_condition_transition_time_moves_only_on_status_change() -> None:
    c1 = set_condition(None, "Ready", "False", "Deploying", "m", 1, "t1")
    c2 = set_condition(c1, "Ready", "False", "Deploying", "m2", 2, "t2")
    assert c2[0]["lastTransitionTime"] == "t1" and c2[0]["observedGeneration"] == 2
    c3 = set_condition(c2, "Ready", "True", "Serving", "m", 2, "t3")
    assert c3[0]["lastTransitionTime"] == "t3"


POLICY = Canary(max_error_rate=0.01, max_p99_latency_seconds=0.5, progress_deadline_seconds=60)


@pytest.mark.parametrize(
    ("ready", "stalled", "metrics", "elapsed", "outcome", "reason"),
    [
        (False, None, None, 10, "pending", "CanaryStarting"),
        (False, None, None, 61, "unhealthy", "CanaryNotReady"),
        (False, "ProgressDeadlineExceeded", None, 1, "unhealthy", "CanaryStalled"),
        (True, None, None, 5, "healthy", "CanaryHealthy"),
        (True, None, CanaryMetrics(None, None), 5, "healthy", "CanaryHealthy"),
        (True, None, CanaryMetrics(0.05, 0.1), 5, "unhealthy", "ErrorRateTooHigh"),
        (True, None, CanaryMetrics(0.0, 0.9), 5, "unhealthy", "LatencyTooHigh"),
        (True, None, CanaryMetrics(0.005, 0.2), 5, "healthy", "CanaryHealthy"),
    ],
)
def test_canary_verdicts(ready, stalled, metrics, elapsed, outcome, reason) -> None:  # type: ignore[no-untyped-def]
    verdict = judge_canary(ready, stalled, metrics, elapsed, POLICY)
    assert (verdict.outcome, verdict.reason) == (outcome, reason)


def test_deployment_ready_needs_current_generation_and_version() -> None:
    dep = {"metadata": {"generation": 2, "labels": {"voiceflow.io/version": "1"}},
           "status": {"observedGeneration": 1, "availableReplicas": 1,
                      "conditions": [{"type": "Available", "status": "True"}]}}
    assert not deployment_ready(dep)  # controller has not seen the latest spec yet
    dep["status"]["observedGeneration"] = 2
    assert deployment_ready(dep, "1") and not deployment_ready(dep, "2")


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff_seconds(n) for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff_seconds(30) == 1800


def test_names_are_dns_labels_and_stable() -> None:
    long = naming.workflow_name("a" * 60, "1.2.3-rc.1", 3)
    assert len(long) <= 63 and long == naming.workflow_name("a" * 60, "1.2.3-rc.1", 3)
    assert naming.workflow_name("m", "1.2.0", 0) == "m-train-1-2-0-0"


EVALUATE_JSON = {  # the shape `voiceflow evaluate --model M --json-out F` writes
    "model": {"mean_der": 0.1234567, "speed": {"ms_per_window_b32": 2},
              "der": {"ami-dev": {"der": 0.2, "der_collar_0.25": 0.1},
                      "sim-dev": {"der": 0.05, "der_collar_0.25": 0.03}}},
    "baseline": None, "gate": None,
}


def test_workflow_metrics_are_read_from_the_evaluate_node() -> None:
    import json

    wf = {"status": {"nodes": {"n": {"templateName": "evaluate", "outputs": {"parameters": [
        {"name": "metrics", "value": json.dumps(EVALUATE_JSON)}]}}}}}
    assert workflow_metrics(wf) == {"der": "0.1235", "derCollar": "0.0650", "msPerWindow": "2.0000"}
    assert workflow_metrics({"status": {}}) == {}


def test_gate_refusal_is_reported_once_and_not_retried() -> None:
    body = example_body("train-streaming.yaml")
    name = ch.child_refs(body)[ch.WORKFLOW].name
    wf = {"metadata": {"name": name}, "status": {"phase": "Failed", "message": "child failed", "nodes": {
        "r": {"templateName": "register", "outputs": {"exitCode": "3"}}}}}
    plan = decide(body, {ch.WORKFLOW: wf}, T0)
    assert plan.status["phase"] == "Failed" and plan.status.get("attempts", 0) == 0
    trained = next(c for c in plan.status["conditions"] if c["type"] == "Trained")
    assert trained["reason"] == "GateRefused"
    assert [e.reason for e in plan.events] == ["GateRefused"]
    again = decide({**body, "status": plan.status}, {ch.WORKFLOW: wf}, T0)
    assert again.events == [] and again.ensure == {} and again.status == plan.status


def test_decide_is_idempotent_for_the_same_observation() -> None:
    body = example_body("train-streaming.yaml")
    first = decide(body, {}, T0)
    again = decide({**body, "status": first.status}, {}, T0)
    assert first.ensure.keys() == again.ensure.keys() == {ch.WORKFLOW}
    assert first.ensure[ch.WORKFLOW] == again.ensure[ch.WORKFLOW]


def test_decide_retries_failed_workflow_after_backoff() -> None:
    body = example_body("train-streaming.yaml")
    refs = ch.child_refs(body)
    failed = {ch.WORKFLOW: {"metadata": {"name": refs[ch.WORKFLOW].name}, "status": {"phase": "Failed"}}}
    plan = decide(body, failed, T0)
    assert plan.status["attempts"] == 1 and plan.status["retryAfter"] == "2026-11-25T12:00:30Z"
    body = {**body, "status": plan.status}
    assert ch.child_refs(body)[ch.WORKFLOW].name.endswith("-1")
    assert decide(body, {}, T0 + dt.timedelta(seconds=10)).ensure == {}  # still backing off
    assert ch.WORKFLOW in decide(body, {}, T0 + dt.timedelta(seconds=31)).ensure


def test_kserve_canary_sets_canary_traffic_percent() -> None:
    body = example_body("serve-existing-kserve.yaml")
    body["status"] = {"servedVersion": "0.9.0", "servedModelUri": "s3://m/0.9.0.onnx"}
    plan = decide(body, {}, T0)
    isvc = plan.ensure[ch.ISVC]
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert plan.status["phase"] == "Canary"


def test_rbac_covers_every_child_kind() -> None:
    resources = {(g, r) for g, r, _ in rbac_rules()}
    for api_version, plural in ch.PLURALS.values():
        group = api_version.rpartition("/")[0]
        assert (group, plural) in resources
    assert ("voiceflow.io", "diarizationmodels/status") in resources


def test_status_fields_the_operator_writes_survive_pruning() -> None:
    from vf_k8s_schema import prune, schema_for

    body = example_body("train-streaming.yaml")
    refs = ch.child_refs(body)
    done = {ch.WORKFLOW: {"metadata": {"name": refs[ch.WORKFLOW].name}, "status": {"phase": "Succeeded"}},
            ch.EXPORT: {"metadata": {"name": refs[ch.EXPORT].name}, "status": {"succeeded": 1}}}
    status = decide(body, done, T0).status
    status.update(decide({**body, "status": status}, {}, T0).status)
    schema = schema_for("voiceflow.io/v1alpha1", "DiarizationModel")
    full = {**body, "status": status}
    assert prune(schema, full)["status"] == status
    assert {"modelVersion", "trainedVersion", "trainingVersion", "modelUri"} <= status.keys()
    assert prune(schema, {**body, "status": {**status, "bogus": 1}})["status"] == status


# --- default images (voiceflow operator --serving-image / --pipelines-image) ---------------------

IMAGES = ImageDefaults(serving="registry.example/voiceflow/inference-pod:9.9.9",
                       pipelines="registry.example/voiceflow/pipelines:9.9.9")


def container_images(manifest: dict) -> set[str]:
    pod = manifest["spec"]["template"]["spec"]
    return {c["image"] for c in pod["containers"]}


def workflow_image(workflow: dict) -> str:
    params = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    return str(params["image"])  # every step runs {{workflow.parameters.image}}


def plans_through_serving(body: dict, images: ImageDefaults | None, policy: Policy | None = None) -> dict[str, dict]:
    """The Workflow, the export Job and the stable Deployment decide() renders for `body`."""
    refs = ch.child_refs(body)
    trained = {ch.WORKFLOW: {"metadata": {"name": refs[ch.WORKFLOW].name}, "status": {"phase": "Succeeded"}}}
    exported = {**trained, ch.EXPORT: {"metadata": {"name": refs[ch.EXPORT].name}, "status": {"succeeded": 1}}}
    return {
        ch.WORKFLOW: decide(body, {}, T0, images=images, policy=policy).ensure[ch.WORKFLOW],
        ch.EXPORT: decide(body, trained, T0, images=images, policy=policy).ensure[ch.EXPORT],
        ch.STABLE_DEPLOY: decide(body, exported, T0, images=images, policy=policy).ensure[ch.STABLE_DEPLOY],
    }


def test_builtin_default_images_are_the_images_the_chart_builds() -> None:
    spec = parse_spec({"version": "1", "training": {"dataset": "s3://d"}})
    assert spec.training is not None
    assert spec.training.image == DEFAULT_PIPELINES_IMAGE == "voiceflow/pipelines:0.1.0"
    assert spec.serving.image == DEFAULT_SERVING_IMAGE == "voiceflow/inference-pod:0.1.0"


def test_operator_default_images_apply_where_the_spec_names_none() -> None:
    body = example_body("train-streaming.yaml")
    assert "image" not in body["spec"]["training"] and "image" not in body["spec"]["serving"]
    built = plans_through_serving(body, IMAGES)
    assert workflow_image(built[ch.WORKFLOW]) == IMAGES.pipelines
    assert container_images(built[ch.EXPORT]) == {IMAGES.pipelines}
    assert container_images(built[ch.STABLE_DEPLOY]) == {IMAGES.serving}
    kserve = example_body("serve-existing-kserve.yaml")
    kserve["spec"]["serving"].pop("image", None)
    (predictor,) = decide(kserve, {}, T0, images=IMAGES).ensure[ch.ISVC]["spec"]["predictor"]["containers"]
    assert predictor["image"] == IMAGES.serving


def test_images_named_in_the_spec_win_over_the_operator_defaults() -> None:
    body = example_body("train-streaming.yaml")
    body["spec"]["training"]["image"] = "mine/train:1"
    body["spec"]["serving"]["image"] = "mine/serve:1"
    built = plans_through_serving(body, IMAGES, Policy(allowed_images=("mine/",)))  # allowed by the installation
    assert workflow_image(built[ch.WORKFLOW]) == "mine/train:1"
    assert container_images(built[ch.EXPORT]) == {"mine/train:1"}
    assert container_images(built[ch.STABLE_DEPLOY]) == {"mine/serve:1"}


def test_without_operator_defaults_the_builtin_images_are_used() -> None:
    built = plans_through_serving(example_body("train-streaming.yaml"), None)
    assert container_images(built[ch.EXPORT]) == {DEFAULT_PIPELINES_IMAGE}
    assert container_images(built[ch.STABLE_DEPLOY]) == {DEFAULT_SERVING_IMAGE}


def test_cli_image_flags_win_over_the_environment_then_the_builtins() -> None:
    from voiceflow_operator.cli import PIPELINES_IMAGE_ENV, SERVING_IMAGE_ENV, image_defaults

    env = {SERVING_IMAGE_ENV: "env/serve:2", PIPELINES_IMAGE_ENV: "env/pipelines:2"}
    assert image_defaults("flag/serve:3", "flag/pipelines:3", env) == ImageDefaults("flag/serve:3", "flag/pipelines:3")
    assert image_defaults(None, None, env) == ImageDefaults("env/serve:2", "env/pipelines:2")
    assert image_defaults(None, None, {}) == ImageDefaults()


def test_cli_parses_the_image_flags() -> None:
    main = pytest.importorskip("voiceflow_cli.main")
    args = main.build_parser().parse_args(
        ["operator", "--serving-image=a/serve:1", "--pipelines-image", "a/pipelines:1"]
    )
    assert (args.serving_image, args.pipelines_image) == ("a/serve:1", "a/pipelines:1")


# --- spec.serving.pipeline -> env VOICEFLOW_PIPELINE of every serving container -----------------


def pipeline_env(container: dict) -> list[str]:
    return [e["value"] for e in container.get("env") or () if e["name"] == "VOICEFLOW_PIPELINE"]


def serving_containers(body: dict) -> dict[str, dict]:
    """The stable and canary Deployments' (streaming) or the InferenceService's (kserve) containers."""
    from voiceflow_operator.builders import build_deployment, build_inference_service
    from voiceflow_operator.builders.common import Owner

    owner, spec = Owner.from_body(body), parse_spec(body["spec"])
    uri = "pvc://voiceflow-models/x/model.onnx"
    if spec.serving.mode == "kserve":
        isvc = build_inference_service(owner, spec, owner.name, spec.version, uri, 20)
        return {"kserve": isvc["spec"]["predictor"]["containers"][0]}
    deployments = {
        role: build_deployment(owner, spec, f"{owner.name}-{role}", role, spec.version, uri)
        for role in ("stable", "canary")
    }
    return {role: d["spec"]["template"]["spec"]["containers"][0] for role, d in deployments.items()}


def test_pipeline_defaults_to_embedding() -> None:
    spec = parse_spec({"version": "1", "model": {"uri": "s3://m"}})
    assert spec.serving.pipeline == "embedding"
    assert parse_spec(example_body("minimal.yaml")["spec"]).serving.pipeline == "embedding"


@pytest.mark.parametrize("example", ["train-streaming.yaml", "serve-existing-kserve.yaml"])
@pytest.mark.parametrize("pipeline", [None, "embedding", "segmentation", "embedding-overlap"])
def test_serving_containers_get_the_pipeline_env(example: str, pipeline: str | None) -> None:
    body = example_body(example)
    if pipeline is None:
        body["spec"]["serving"].pop("pipeline")  # a resource stored before the CRD had the field
    else:
        body["spec"]["serving"]["pipeline"] = pipeline
    containers = serving_containers(body)
    assert containers
    for container in containers.values():
        assert pipeline_env(container) == [pipeline or "embedding"]


def test_kserve_container_keeps_its_storage_uri_env() -> None:
    (container,) = serving_containers(example_body("serve-existing-kserve.yaml")).values()
    assert [e["name"] for e in container["env"]] == ["STORAGE_URI", "VOICEFLOW_PIPELINE"]


def test_the_segmentation_example_serves_the_segmentation_pipeline() -> None:
    body = example_body("serve-segmentation-streaming.yaml")
    assert {role: pipeline_env(c) for role, c in serving_containers(body).items()} == {
        "stable": ["segmentation"], "canary": ["segmentation"]
    }


def test_changing_the_pipeline_re_applies_the_serving_children_only() -> None:
    """A pipeline change is an ordinary spec change: the serving children's spec hash moves (the
    Deployment's pod template changes, so it rolls), nothing is recreated, training is untouched."""
    from voiceflow_operator.drift import needs_apply, with_hash

    def serving_plan(body: dict) -> dict[str, dict]:
        body = {**body, "status": {"servedVersion": body["spec"]["version"], "servedModelUri": "pvc://m/x/model.onnx",
                                   "modelVersion": body["spec"]["version"], "modelUri": "pvc://m/x/model.onnx"}}
        return dict(decide(body, {}, T0).ensure)

    for example in ("train-streaming.yaml", "serve-existing-kserve.yaml"):
        before = example_body(example)
        after = example_body(example)
        after["spec"]["serving"]["pipeline"] = "segmentation"
        old, new = serving_plan(before), serving_plan(after)
        assert old.keys() == new.keys()
        changed = {slot for slot in old if needs_apply(new[slot], with_hash(old[slot]))}
        serving_slots = {ch.STABLE_DEPLOY, ch.ISVC} & old.keys()
        assert serving_slots and changed == serving_slots, (example, changed)
        for slot in changed:
            # Same object, only the pod template's env differs: applied in place, not an immutable-field change.
            assert new[slot]["metadata"]["name"] == old[slot]["metadata"]["name"]
