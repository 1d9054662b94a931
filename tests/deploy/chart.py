"""Rendering the Helm chart with the real helm binary, and the schemas rendered objects are checked
against (Kubernetes' own via kubernetes-validate, third-party CRDs via jsonschema)."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from .conftest import CHART, ROOT

RELEASE = "vf"
NAMESPACE = "voiceflow"
KUBE_VERSIONS = ("1.29.0", "1.33.0")
# The documented values combinations (values.yaml's header lists the same files).
COMBOS: dict[str, tuple[str, ...]] = {
    "default": (),
    "streaming-only": ("ci/streaming-only-values.yaml",),
    "kserve": ("ci/kserve-values.yaml",),
    "external-db": ("ci/external-db-values.yaml",),
    "keda": ("ci/keda-values.yaml",),
    "prometheus-adapter": ("ci/prometheus-adapter-values.yaml",),
    "monitoring-operator": ("ci/monitoring-operator-values.yaml",),
    "dev": ("values-dev.yaml",),
}
# APIs a combination's cluster has beyond Kubernetes' own (`helm template --api-versions`): what
# `.Capabilities.APIVersions.Has` sees there. Without KEDA's, provider keda falls back to a CPU HPA.
COMBO_API_VERSIONS: dict[str, tuple[str, ...]] = {"keda": ("keda.sh/v1alpha1",)}
THIRD_PARTY_CRDS = {
    ("keda.sh", "ScaledObject"): ROOT / "crds" / "vendor" / "keda.sh_scaledobjects.yaml",
    ("serving.kserve.io", "InferenceService"): ROOT / "crds" / "vendor" / "serving.kserve.io_inferenceservices.yaml",
    ("argoproj.io", "Workflow"): ROOT / "crds" / "vendor" / "argoproj.io_workflows.yaml",
    ("gateway.networking.k8s.io", "HTTPRoute"): ROOT / "crds" / "vendor" / "gateway.networking.k8s.io_httproutes.yaml",
    ("monitoring.coreos.com", "PrometheusRule"): Path(__file__).parent
    / "schemas"
    / "monitoring.coreos.com_prometheusrules.yaml",
    ("voiceflow.io", "DiarizationModel"): ROOT / "crds" / "diarizationmodels.voiceflow.io.yaml",
}


def value_args(combo: str) -> list[str]:
    args: list[str] = []
    for f in COMBOS[combo]:
        args += ["-f", str(CHART / f)]
    return args


def api_args(combo: str) -> list[str]:
    """`helm template` only (`helm lint` has no such flag)."""
    return [arg for api in COMBO_API_VERSIONS.get(combo, ()) for arg in ("--api-versions", api)]


def helm(helm_bin: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([helm_bin, *args], capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert proc.returncode == 0, f"helm {' '.join(args)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@functools.cache
def render(
    helm_bin: str, combo: str, kube_version: str = "1.33.0", extra: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """`helm template` (CRDs included) -> the list of rendered objects."""
    proc = helm(
        helm_bin,
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--include-crds",
        "--kube-version",
        kube_version,
        *value_args(combo),
        *api_args(combo),
        *extra,
    )
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def refusal(helm_bin: str, *args: str, combo: str = "default") -> str:
    """What `helm template` prints when the chart refuses `combo`'s values with `args` on top."""
    proc = helm(helm_bin, "template", RELEASE, str(CHART), *value_args(combo), *args, check=False)
    assert proc.returncode != 0, f"{combo} with {' '.join(args)} rendered; the chart should refuse it"
    return proc.stderr


@functools.cache
def crd_schema(group: str, kind: str) -> dict[str, Any]:
    """The served version's openAPIV3Schema of a vendored CRD (loaded once: some are MBs)."""
    path = THIRD_PARTY_CRDS[(group, kind)]
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("kind") == "CustomResourceDefinition" and doc["spec"]["names"]["kind"] == kind:
            return {v["name"]: v["schema"]["openAPIV3Schema"] for v in doc["spec"]["versions"] if v.get("served")}
    raise LookupError(f"{kind} not in {path}")


def validate_object(obj: dict[str, Any], kube_version: str) -> str:
    """Validate one object; returns how ('kubernetes' / 'crd'). Raises on an invalid object."""
    group, _, version = obj["apiVersion"].rpartition("/")
    if (group, obj["kind"]) in THIRD_PARTY_CRDS:
        schemas = crd_schema(group, obj["kind"])
        assert version in schemas, f"{obj['kind']} {obj['apiVersion']}: version not served by the CRD"
        # CRD schemas are OpenAPI 3.0 (JSON Schema draft 4 semantics, e.g. boolean exclusiveMinimum);
        # their patterns are Go regexps, so the schema itself is not checked against a metaschema.
        jsonschema.Draft4Validator(schemas[version]).validate(obj)
        return "crd"
    kubernetes_validate.validate(obj, kube_version, strict=True)
    return "kubernetes"


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def render_notes(helm_bin: str, combo: str, tmp_path: Path) -> str:
    """NOTES.txt as `helm install` would print it for a value combination of COMBOS."""
    # `helm install --dry-run` wants a cluster: render NOTES.txt through `tpl` in a copy of the chart.
    chart = tmp_path / "voiceflow"
    shutil.copytree(CHART, chart)
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "notes.txt")
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data:\n  notes: {{ tpl (.Files.Get "notes.txt") . | quote }}\n'
    )
    args = [a.replace(str(CHART), str(chart)) for a in value_args(combo)]
    proc = helm(
        helm_bin,
        "template",
        RELEASE,
        str(chart),
        "--namespace",
        NAMESPACE,
        *args,
        *api_args(combo),
        "--show-only",
        "templates/zz-notes.yaml",
    )
    notes: str = yaml.safe_load(proc.stdout)["data"]["notes"]
    return notes
