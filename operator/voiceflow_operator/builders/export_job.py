"""The export Job: turn the registered checkpoint into the ONNX model the serving pods load."""

from __future__ import annotations

import posixpath
from typing import Any

from voiceflow.bundle import PUBLISHED_MODEL
from voiceflow_operator.builders.common import RESTRICTED, Owner, container_resources, metadata
from voiceflow_operator.builders.storage import model_files
from voiceflow_operator.constants import WORKFLOW_SERVICE_ACCOUNT
from voiceflow_operator.naming import checkpoint_uri, export_job_name, model_store_uri
from voiceflow_operator.spec import ModelSpec


def export_args(spec: ModelSpec) -> list[str]:
    """The `voiceflow export` argv (after the program name), on the mounted model store."""
    assert spec.training is not None
    t = spec.training
    source = model_files(checkpoint_uri(t.artifacts, spec.version), read_only=False).path
    store = model_files(model_store_uri(t.artifacts, spec.version), read_only=False).path
    # The name a served folder's model has (the pod prefers it); its sidecars and index land beside it.
    target = posixpath.join(store, PUBLISHED_MODEL)
    quantize = ["--quantize", "int8"] if spec.quantize == "int8" else []  # FP32: no flag
    return ["export", source, "--out", target, *quantize]


def build_export_job(owner: Owner, spec: ModelSpec) -> dict[str, Any]:
    assert spec.training is not None, "resources serving an existing model need no export"
    name = export_job_name(owner.name, spec.version)
    meta = metadata(owner, name, "export", spec.version)
    store = model_files(model_store_uri(spec.training.artifacts, spec.version), read_only=False)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            # A few quick retries for flaky object stores; the operator reports a final failure.
            "backoffLimit": 2,
            "activeDeadlineSeconds": 3600,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": meta["labels"]},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": WORKFLOW_SERVICE_ACCOUNT,
                    "volumes": store.volumes,
                    "containers": [
                        {
                            "name": "export",
                            "image": spec.training.image,
                            "command": ["voiceflow"],
                            "args": export_args(spec),
                            "securityContext": dict(RESTRICTED),
                            "volumeMounts": store.mounts,
                            "resources": container_resources(spec.training.resources)
                            or {"requests": {"cpu": "1", "memory": "2Gi"}},
                        }
                    ],
                },
            },
        },
    }
