"""Example DiarizationModel bodies and every child manifest the operator renders for them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from vf_k8s_schema import admit
from voiceflow_operator import builders
from voiceflow_operator.spec import parse_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "crds" / "examples"


def example_body(name: str, uid: str = "0b5c6c57-9f61-4bd6-9a3c-1a2f6b0c0d01") -> dict[str, Any]:
    raw = yaml.safe_load((EXAMPLES / name).read_text())
    body, errors = admit(raw)
    assert not errors, errors
    body["metadata"].setdefault("namespace", "default")
    body["metadata"].update(uid=uid, generation=1)
    return body


def all_children(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every kind of child the builders can render for this resource."""
    body = copy.deepcopy(body)
    owner = builders.Owner.from_body(body)
    spec = parse_spec(body["spec"])
    out: list[dict[str, Any]] = []
    if spec.training is not None:
        out += [builders.build_training_workflow_for(owner, spec, attempt=0), builders.build_export_job(owner, spec)]
    uri = spec.model_uri or "s3://models/x/model.onnx"
    if spec.serving.mode == "streaming":
        out += [
            builders.build_deployment(owner, spec, owner.name, "stable", spec.version, uri),
            builders.build_deployment(owner, spec, f"{owner.name}-canary", "canary", "2.0.0", uri),
            builders.build_service(owner, owner.name, "stable"),
            builders.build_service(owner, f"{owner.name}-canary", "canary"),
            builders.build_http_route(owner, spec, owner.name, owner.name, f"{owner.name}-canary", 10),
            builders.build_http_route(owner, spec, owner.name, owner.name, f"{owner.name}-canary", 0),
            builders.build_scaled_object(owner, spec, owner.name, owner.name, "stable"),
        ]
    else:
        out += [
            builders.build_inference_service(owner, spec, owner.name, spec.version, uri, None),
            builders.build_inference_service(owner, spec, owner.name, spec.version, uri, 20),
        ]
    return out
