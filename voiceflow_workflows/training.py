"""The training workflow: prepare data -> train -> export -> evaluate -> register.

Export runs before evaluate so the evaluation gate scores the artifact that will be served
(the INT8 one when quantizing), not a torch checkpoint that never ships.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from hera.workflows import DAG, Parameter, Task
from hera.workflows.models import ValueFrom

from voiceflow.contracts import TRAINING_PRESETS
from voiceflow_workflows.common import RunOptions, step_container, strip_empty, voiceflow_workflow
from voiceflow_workflows.dataset import dataset_access, store_access
from voiceflow_workflows.steps import (
    METRICS,
    evaluate_step,
    export_step,
    prepare_step,
    register_step,
    train_step,
)

PRESETS = TRAINING_PRESETS


@dataclass(frozen=True)
class TrainingWorkflowParams(RunOptions):
    """What one training run is parameterised by (the DiarizationModel's spec.training)."""

    name: str
    version: str
    dataset: str  # pvc://claim/path, s3://bucket/prefix, gs://..., https://...tar.gz, file:///path
    image: str
    config: str = "full"  # a preset name, or a config file path inside the image
    artifacts: str = "pvc://voiceflow-models"  # the model store, a PVC
    quantize: str = "none"  # none | int8
    der_margin: float = 0.0
    seed: int = 0
    dev_conversations: int = 12
    workspace_size: str = "20Gi"
    active_deadline_seconds: int = 24 * 3600
    # Config overrides, as `voiceflow train` flags: epochs, batch_size, lr, max_steps.
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    max_steps: int | None = None

    @property
    def config_is_file(self) -> bool:
        return self.config not in PRESETS

    def overrides(self) -> tuple[str, ...]:
        flags = {
            "--epochs": self.epochs,
            "--batch-size": self.batch_size,
            "--lr": self.lr,
            "--max-steps": self.max_steps,
        }
        return tuple(x for flag, v in flags.items() if v is not None for x in (flag, f"{v:g}"))


def build_training_workflow(p: TrainingWorkflowParams) -> dict[str, Any]:
    """Render the training Workflow manifest (a plain dict, no Argo server needed)."""
    data = dataset_access(p.dataset)
    store_volume, store_mount = store_access(p.artifacts)
    metrics_out = Parameter(name="metrics", value_from=ValueFrom(path=METRICS))
    arguments = [
        Parameter(name="version", value=p.version),
        Parameter(name="config", value=p.config),
        Parameter(name="dataset", value=p.dataset),
        Parameter(name="image", value=p.image),
        Parameter(name="artifacts", value=p.artifacts),
        Parameter(name="der-margin", value=str(p.der_margin)),
        Parameter(name="seed", value=str(p.seed)),
        Parameter(name="dev-conversations", value=str(p.dev_conversations)),
    ]
    with voiceflow_workflow(
        "training",
        p,
        "train-model",
        arguments,
        active_deadline_seconds=p.active_deadline_seconds,
        volumes=[store_volume, *data.volumes],
    ) as wf:
        fetch = [data.artifact] if data.artifact is not None else []
        prepare = step_container(prepare_step(data.root), mounts=data.mounts, inputs=fetch)
        train = step_container(
            train_step(p.config_is_file, data.root, p.overrides()),
            resources=p.resources,
            mounts=[*data.mounts, store_mount],
        )
        # the dataset too: the export fits the model's PLDA on the training speakers its config names
        # (train's --data-root) and seals it into the bundle, so the gate compares VBx with VBx
        export = step_container(export_step(p.quantize == "int8"), mounts=[*data.mounts, store_mount])
        # evaluate and register build the dev suite from the dataset (fetched datasets already sit
        # in the workspace; a PVC dataset is mounted)
        evaluate = step_container(evaluate_step(data.root), mounts=data.mounts, outputs=[metrics_out])
        register = step_container(register_step(), mounts=[*data.mounts, store_mount])
        with DAG(name="train-model"):
            templates = (prepare, train, export, evaluate, register)
            tasks = [Task(name=str(t.name), template=t) for t in templates]
            for upstream, downstream in itertools.pairwise(tasks):
                upstream >> downstream
    return strip_empty(wf.to_dict())
