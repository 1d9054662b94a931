"""The export Job: publish the bundle the training workflow gated and registered for serving.

The workflow's own export step (dataset mounted: it fits the PLDA; `spec.export.quantize` applied)
produced the artifact the gate scored, and `voiceflow register` stored that whole bundle, sealed,
under `<artifacts>/<version>/`. The Job re-exports nothing: `voiceflow bundle publish` verifies
every part against the seal and switches the serving folder's `current` to a copy in one rename,
so the pods serve byte for byte what was gated (a re-export here had no dataset, hence no PLDA:
VBx gated, AHC served).
"""

from __future__ import annotations

from typing import Any

from voiceflow_operator.builders.common import RESTRICTED, Owner, container_resources, metadata
from voiceflow_operator.builders.storage import model_files
from voiceflow_operator.constants import WORKFLOW_SERVICE_ACCOUNT
from voiceflow_operator.naming import export_job_name, model_store_uri, registered_model_uri
from voiceflow_operator.spec import ModelSpec


def export_args(spec: ModelSpec) -> list[str]:
    """The `voiceflow bundle publish` argv (after the program name), on the mounted model store."""
    assert spec.training is not None
    t = spec.training
    registered = model_files(registered_model_uri(t.artifacts, spec.version), read_only=False).path
    # The serving folder the pods mount: they resolve its `current` bundle's model.onnx.
    serving = model_files(model_store_uri(t.artifacts, spec.version), read_only=False).path
    return ["bundle", "publish", registered, serving]


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
