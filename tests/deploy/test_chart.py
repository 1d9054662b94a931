"""The Helm chart: lint, render every documented values combination for Kubernetes 1.29 and 1.33,
validate every object, and check the properties the chart promises (security, probes, wiring)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from .chart import (
    COMBOS,
    KUBE_VERSIONS,
    NAMESPACE,
    RELEASE,
    by_kind,
    helm,
    pod_spec,
    refusal,
    render,
    render_notes,
    validate_object,
    value_args,
)
from .conftest import CHART, ROOT

WORKLOADS = ("Deployment", "StatefulSet")
AGREED_IMAGES = {
    "voiceflow/operator",
    "voiceflow/control-api",
    "voiceflow/inference-pod",
    "voiceflow/pipelines",
}


def test_values_header_documents_every_combination() -> None:
    header = (CHART / "values.yaml").read_text().split("\n\n", 1)[0]
    for files in COMBOS.values():
        for f in files:
            assert f in header, f"{f} is not documented in values.yaml"
    assert sorted(p.name for p in (CHART / "ci").glob("*.yaml")) == sorted(
        f.split("/")[1] for files in COMBOS.values() for f in files if f.startswith("ci/")
    )


@pytest.mark.parametrize("combo", sorted(COMBOS))
def test_helm_lint_strict(helm_bin: str, combo: str) -> None:
    proc = helm(helm_bin, "lint", "--strict", str(CHART), "--namespace", NAMESPACE, *value_args(combo))
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("combo", sorted(COMBOS))
def test_every_rendered_object_validates(helm_bin: str, combo: str, kube_version: str) -> None:
    objects = render(helm_bin, combo, kube_version)
    assert objects
    kinds = set()
    for obj in objects:
        where = f"{combo} k8s {kube_version}: {obj['kind']}/{obj['metadata'].get('name')}"
        if obj["kind"] == "ServiceMonitor":
            # No vendored schema (see tests/deploy/schemas/README.md): checked in test_monitoring.py.
            assert obj["apiVersion"] == "monitoring.coreos.com/v1", where
            continue
        try:
            validate_object(obj, kube_version)
        except Exception as exc:  # the validators raise several types; name the object
            pytest.fail(f"{where}: {exc}")
        kinds.add(obj["kind"])
    assert "CustomResourceDefinition" in kinds


def test_chart_crd_is_the_repository_crd() -> None:
    """A real file (a copied or vendored chart keeps it), equal byte for byte to the operator's CRD."""
    links = [str(p.relative_to(CHART)) for p in CHART.rglob("*") if p.is_symlink()]
    assert not links, f"symbolic links break a copied chart: {links}"
    chart_crd = CHART / "crds" / "diarizationmodels.voiceflow.io.yaml"
    assert chart_crd.read_bytes() == (ROOT / "crds" / "diarizationmodels.voiceflow.io.yaml").read_bytes(), (
        "cp crds/diarizationmodels.voiceflow.io.yaml helm/voiceflow/crds/"
    )


@pytest.mark.parametrize("combo", sorted(COMBOS))
def test_pods_are_locked_down(helm_bin: str, combo: str) -> None:
    objects = render(helm_bin, combo)
    for workload in [o for o in objects if o["kind"] in WORKLOADS]:
        name = f"{combo}: {workload['metadata']['name']}"
        spec = pod_spec(workload)
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, name
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, name
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], name
            # Writable code only in the dev loop (Tilt live_update).
            assert sc.get("readOnlyRootFilesystem") is (combo != "dev") or c["name"] in {
                "postgresql",
                "redis",
            }, name
            assert c["resources"].get("requests"), name
            if combo != "dev":
                assert c["resources"].get("limits", {}).get("memory"), name
            assert "livenessProbe" in c and "readinessProbe" in c, name


@pytest.mark.parametrize("combo", sorted(COMBOS))
def test_services_pdbs_and_policies_select_real_pods(helm_bin: str, combo: str) -> None:
    objects = render(helm_bin, combo)
    pods = {
        w["metadata"]["name"]: (w["spec"]["template"]["metadata"]["labels"], pod_spec(w))
        for w in objects
        if w["kind"] in WORKLOADS
    }

    def selected(selector: dict[str, str]) -> list[str]:
        return [n for n, (labels, _) in pods.items() if selector.items() <= labels.items()]

    for svc in by_kind(objects, "Service"):
        targets = selected(svc["spec"]["selector"])
        assert len(targets) == 1, (combo, svc["metadata"]["name"], targets)
        port_names = {p["name"] for c in pods[targets[0]][1]["containers"] for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in port_names, (svc["metadata"]["name"], port)
    for pdb in by_kind(objects, "PodDisruptionBudget"):
        assert len(selected(pdb["spec"]["selector"]["matchLabels"])) == 1, pdb["metadata"]["name"]
    for workload in objects:
        if workload["kind"] in WORKLOADS:
            sel = workload["spec"]["selector"]["matchLabels"]
            assert sel.items() <= workload["spec"]["template"]["metadata"]["labels"].items()
    policies = by_kind(objects, "NetworkPolicy")
    if combo != "dev":
        assert policies, combo
        for name, (labels, _) in pods.items():
            specific = [
                p
                for p in policies
                if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
                and not p["metadata"]["name"].endswith("default-deny")
            ]
            assert specific, f"{combo}: no NetworkPolicy allow-list for {name}"


@pytest.mark.parametrize("combo", sorted(COMBOS))
def test_images_follow_the_agreed_names(helm_bin: str, combo: str) -> None:
    objects = render(helm_bin, combo)
    ours = set()
    for w in objects:
        if w["kind"] in WORKLOADS:
            for c in pod_spec(w)["containers"]:
                repo, _, tag = c["image"].rpartition(":")
                assert tag and tag != "latest", c["image"]
                if repo.startswith("voiceflow/"):
                    ours.add(repo)
                    assert tag == "0.1.0", c["image"]
                    if "command" in c:  # the dev values run the server under a file watcher
                        assert c["command"][0] == "watchfiles", c["command"]
                    else:
                        assert c["args"][0] in {"serve", "operator", "api"}, c["args"]
    assert ours <= AGREED_IMAGES
    for dep in by_kind(objects, "Deployment"):
        for env in pod_spec(dep)["containers"][0].get("env", []):
            if env["name"] in {"VOICEFLOW_SERVING_IMAGE", "VOICEFLOW_TRAINING_IMAGE"}:
                assert env["value"].rpartition(":")[0] in AGREED_IMAGES


def test_database_and_redis_wiring(helm_bin: str) -> None:
    def api_env(combo: str) -> dict[str, dict]:
        (api,) = [
            d for d in by_kind(render(helm_bin, combo), "Deployment") if d["metadata"]["name"].endswith("control-api")
        ]
        return {e["name"]: e for e in pod_spec(api)["containers"][0]["env"]}

    bundled = api_env("default")
    assert bundled["VOICEFLOW_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{RELEASE}-voiceflow-secrets",
        "key": "database-url",
    }
    (secret,) = by_kind(render(helm_bin, "default"), "Secret")
    assert re.fullmatch(
        rf"postgresql\+psycopg://voiceflow:\w+@{RELEASE}-voiceflow-postgresql:5432/voiceflow",
        secret["stringData"]["database-url"],
    )
    assert secret["stringData"]["redis-url"] == f"redis://{RELEASE}-voiceflow-redis:6379/0"
    external = api_env("external-db")
    assert external["VOICEFLOW_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "voiceflow-database",
        "key": "database-url",
    }
    assert external["VOICEFLOW_JWT_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "voiceflow-control-api"
    kinds = {(o["kind"], o["metadata"]["name"]) for o in render(helm_bin, "external-db")}
    assert not any(name.endswith(("postgresql", "redis")) for _, name in kinds)
    assert not by_kind(render(helm_bin, "streaming-only"), "Secret")


def test_autoscaling_providers(helm_bin: str) -> None:
    keda = render(helm_bin, "keda")
    (so,) = by_kind(keda, "ScaledObject")
    assert so["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-voiceflow-inference"
    assert so["spec"]["maxReplicaCount"] == 20
    assert not by_kind(keda, "HorizontalPodAutoscaler")
    adapter = render(helm_bin, "prometheus-adapter")
    assert not by_kind(adapter, "ScaledObject")
    (hpa,) = by_kind(adapter, "HorizontalPodAutoscaler")
    (rules_cm,) = [c for c in by_kind(adapter, "ConfigMap") if c["metadata"]["name"].endswith("adapter-rules")]
    assert rules_cm["metadata"]["namespace"] == "monitoring"
    rules = yaml.safe_load(rules_cm["data"]["config.yaml"])["rules"]
    assert rules[0]["name"]["as"] == hpa["spec"]["metrics"][0]["pods"]["metric"]["name"]
    # The autoscaler owns replicas: a fixed count only without one.
    (dep,) = [d for d in by_kind(adapter, "Deployment") if d["metadata"]["name"].endswith("inference")]
    assert "replicas" not in dep["spec"]
    kserve = render(helm_bin, "kserve")
    assert not by_kind(kserve, "ScaledObject") and not by_kind(kserve, "HorizontalPodAutoscaler")


def test_keda_without_its_crds_falls_back_to_a_cpu_hpa(helm_bin: str) -> None:
    """provider keda (the default) on a cluster without KEDA: a ScaledObject would fail the install."""
    without = render(helm_bin, "default")  # no --api-versions: the cluster has no keda.sh/v1alpha1
    assert not by_kind(without, "ScaledObject")
    (hpa,) = by_kind(without, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-voiceflow-inference"
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["averageUtilization"] == 50
    validate_object(hpa, "1.33.0")
    (dep,) = [d for d in by_kind(without, "Deployment") if d["metadata"]["name"] == f"{RELEASE}-voiceflow-inference"]
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    assert all("cpu" in c["resources"]["requests"] for c in pod_spec(dep)["containers"]), "utilization needs a request"
    with_keda = render(helm_bin, "default", extra=("--api-versions", "keda.sh/v1alpha1"))
    assert len(by_kind(with_keda, "ScaledObject")) == 1 and not by_kind(with_keda, "HorizontalPodAutoscaler")


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["autoscaling.provider=hpa"], "autoscaling.provider"),
        (["operator.replicas=3"], "operator.replicas"),
        (["inference.port=70000"], "inference.port"),
        (["inference.pipeline=diart"], "inference.pipeline"),
        (["inference.engineConfig.pipeline=segmentation"], "inference.engineConfig"),
        (["externalDatabase.url=mysql://x"], "externalDatabase.url"),
        (["bogusKey=1"], "bogusKey"),
        (["postgresql.enabled=false"], "externalDatabase.url or externalDatabase.existingSecret"),
        (["redis.enabled=false"], "externalRedis.url or externalRedis.existingSecret"),
        (["serving.streaming.enabled=false"], "at least one of serving.streaming and serving.kserve"),
    ],
)
def test_bad_values_fail_at_install(helm_bin: str, sets: list[str], message: str) -> None:
    stderr = refusal(helm_bin, *[a for s in sets for a in ("--set", s)])
    assert message in stderr, stderr


def test_notes_render(helm_bin: str, tmp_path: Path) -> None:
    notes = render_notes(helm_bin, "default", tmp_path)
    assert f"port-forward svc/{RELEASE}-voiceflow-inference 3000:3000" in notes
    assert f"port-forward svc/{RELEASE}-voiceflow-control-api 8000:8000" in notes
    assert "kubectl get dm" in notes


@pytest.mark.parametrize("combo", sorted(COMBOS))
def test_environment_is_what_the_apps_read(helm_bin: str, combo: str) -> None:
    """Every VOICEFLOW_* variable the chart sets is a field of that app's Settings."""
    settings = {
        "control-api": pytest.importorskip("control_api.settings").Settings,
        "inference": pytest.importorskip("inference_pod.settings").Settings,
    }
    for dep in by_kind(render(helm_bin, combo), "Deployment"):
        component = dep["metadata"]["labels"]["app.kubernetes.io/component"]
        if component not in settings:
            continue
        fields = {f"VOICEFLOW_{name.upper()}" for name in settings[component].model_fields}
        env = {e["name"] for c in pod_spec(dep)["containers"] for e in c.get("env", [])}
        unknown = {e for e in env if e.startswith("VOICEFLOW_")} - fields
        assert not unknown, f"{combo} {component}: {sorted(unknown)} are not settings of the app"


def test_packaged_chart_carries_the_crd(helm_bin: str, tmp_path: Path) -> None:
    import tarfile

    helm(helm_bin, "package", str(CHART), "--destination", str(tmp_path))
    (archive,) = tmp_path.glob("voiceflow-*.tgz")
    with tarfile.open(archive) as tar:
        member = tar.extractfile("voiceflow/crds/diarizationmodels.voiceflow.io.yaml")
        assert member is not None
        assert member.read() == (ROOT / "crds" / "diarizationmodels.voiceflow.io.yaml").read_bytes()
        assert "voiceflow/values.schema.json" in tar.getnames()


def test_default_deny_leaves_the_operators_model_pods_alone(helm_bin: str) -> None:
    common = pytest.importorskip("voiceflow_operator.builders.common")
    (deny,) = [
        p
        for p in by_kind(render(helm_bin, "default"), "NetworkPolicy")
        if p["metadata"]["name"].endswith("default-deny")
    ]
    # Even a DiarizationModel named like the release: its pods are not the chart's.
    labels = common.labels(common.Owner(RELEASE, NAMESPACE, "uid"), "stable", "1.0.0")
    assert not deny["spec"]["podSelector"]["matchLabels"].items() <= labels.items()


def test_model_store_is_the_operators_default(helm_bin: str) -> None:
    spec = pytest.importorskip("voiceflow_operator.spec")
    storage = pytest.importorskip("voiceflow_operator.builders.storage")
    claim, _ = storage.pvc_parts(spec.Training.artifacts)
    (pvc,) = by_kind(render(helm_bin, "default"), "PersistentVolumeClaim")
    assert pvc["metadata"]["name"] == claim
    assert pvc["metadata"]["namespace"] == NAMESPACE


def _inference_env(objects: list[dict]) -> dict[str, str]:
    (dep,) = [d for d in by_kind(objects, "Deployment") if d["metadata"]["name"].endswith("inference")]
    (container,) = pod_spec(dep)["containers"]
    return {e["name"]: e.get("value") for e in container["env"]}


@pytest.mark.parametrize("pipeline", [None, "segmentation", "embedding-overlap"])
def test_inference_pipeline_is_passed_to_the_pod(helm_bin: str, pipeline: str | None) -> None:
    extra = ("--set", f"inference.pipeline={pipeline}") if pipeline else ()
    env = _inference_env(render(helm_bin, "default", extra=extra))
    assert env["VOICEFLOW_PIPELINE"] == (pipeline or "embedding")


def test_inference_pipeline_values_are_the_engines() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    enum = schema["properties"]["inference"]["properties"]["pipeline"]["enum"]
    config = pytest.importorskip("voiceflow.config")
    assert tuple(enum) == config.PIPELINES
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["inference"]["pipeline"] == config.DEFAULT_PIPELINE


def test_inference_engine_config_is_mounted_and_is_what_the_pod_reads(helm_bin: str, tmp_path: Path) -> None:
    """inference.engineConfig -> a ConfigMap mounted in the pod, VOICEFLOW_ENGINE_CONFIG naming the
    file, and a checksum annotation so pods roll when it changes; the file is what the engine loads."""
    config = pytest.importorskip("voiceflow.config")
    settings = {"streaming": {"embedding_hops": 2, "clustering": {"confirm_windows": 2}}}
    extra = ("--set-json", f"inference.engineConfig={json.dumps(settings)}")
    objects = render(helm_bin, "default", extra=extra)
    (dep,) = [d for d in by_kind(objects, "Deployment") if d["metadata"]["name"].endswith("inference")]
    spec = pod_spec(dep)
    env = _inference_env(objects)
    (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "engine-config"]
    assert env["VOICEFLOW_ENGINE_CONFIG"] == f"{mount['mountPath']}/engine.yaml" and mount["readOnly"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == "engine-config"]
    (configmap,) = [c for c in by_kind(objects, "ConfigMap") if c["metadata"]["name"] == volume["configMap"]["name"]]
    path = tmp_path / "engine.yaml"
    path.write_text(configmap["data"]["engine.yaml"])
    loaded = config.load_engine_config(path, env["VOICEFLOW_PIPELINE"])
    assert loaded.streaming.embedding_hops == 2 and loaded.streaming.clustering.confirm_windows == 2
    checksum = dep["spec"]["template"]["metadata"]["annotations"]["voiceflow.io/engine-config-sha256"]
    settings["streaming"]["embedding_hops"] = 3
    changed = render(helm_bin, "default", extra=("--set-json", f"inference.engineConfig={json.dumps(settings)}"))
    (dep2,) = [d for d in by_kind(changed, "Deployment") if d["metadata"]["name"].endswith("inference")]
    assert dep2["spec"]["template"]["metadata"]["annotations"]["voiceflow.io/engine-config-sha256"] != checksum
    # without it: no ConfigMap, no variable, no mount
    plain = render(helm_bin, "default")
    assert "VOICEFLOW_ENGINE_CONFIG" not in _inference_env(plain)
    assert not [c for c in by_kind(plain, "ConfigMap") if c["metadata"]["name"].endswith("engine-config")]
