"""Where each child of a DiarizationModel lives: slot -> (apiVersion, plural, name).

Names are derived from the resource alone (spec + status), so after a restart the operator looks
up exactly what it created before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voiceflow_operator import naming


@dataclass(frozen=True)
class Ref:
    api_version: str
    plural: str
    name: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]


WORKFLOW, EXPORT = "workflow", "export"
STABLE_DEPLOY, CANARY_DEPLOY = "stable-deployment", "canary-deployment"
STABLE_SVC, CANARY_SVC, ROUTE = "stable-service", "canary-service", "route"
STABLE_SCALER, CANARY_SCALER = "stable-scaler", "canary-scaler"
ISVC = "inference-service"

PLURALS: dict[str, tuple[str, str]] = {
    "Workflow": ("argoproj.io/v1alpha1", "workflows"),
    "Job": ("batch/v1", "jobs"),
    "Deployment": ("apps/v1", "deployments"),
    "Service": ("v1", "services"),
    "HTTPRoute": ("gateway.networking.k8s.io/v1", "httproutes"),
    "ScaledObject": ("keda.sh/v1alpha1", "scaledobjects"),
    "InferenceService": ("serving.kserve.io/v1beta1", "inferenceservices"),
}


def ref_of(manifest: Mapping[str, Any]) -> Ref:
    api_version, plural = PLURALS[manifest["kind"]]
    return Ref(api_version, plural, manifest["metadata"]["name"])


def child_refs(body: Mapping[str, Any]) -> dict[str, Ref]:
    """Every child slot the resource may have right now."""
    name = body["metadata"]["name"]
    spec, status = body.get("spec") or {}, body.get("status") or {}
    version = str(spec.get("version", ""))
    attempt = int(status.get("attempts", 0) or 0) if status.get("trainingVersion") == version else 0
    stable, canary = naming.stable_name(name), naming.canary_name(name)
    return {
        WORKFLOW: Ref("argoproj.io/v1alpha1", "workflows", naming.workflow_name(name, version, attempt)),
        EXPORT: Ref("batch/v1", "jobs", naming.export_job_name(name, version)),
        STABLE_DEPLOY: Ref("apps/v1", "deployments", stable),
        CANARY_DEPLOY: Ref("apps/v1", "deployments", canary),
        STABLE_SVC: Ref("v1", "services", stable),
        CANARY_SVC: Ref("v1", "services", canary),
        ROUTE: Ref("gateway.networking.k8s.io/v1", "httproutes", stable),
        STABLE_SCALER: Ref("keda.sh/v1alpha1", "scaledobjects", stable),
        CANARY_SCALER: Ref("keda.sh/v1alpha1", "scaledobjects", canary),
        ISVC: Ref("serving.kserve.io/v1beta1", "inferenceservices", stable),
    }
