"""The platform's shared names, each spelled once: the `DiarizationModel` API, its training
presets and hyperparameters, and the exit codes pipeline steps report by.

The operator, the control API, the workflow builders and the CLI import these; the CRD's schema is
YAML, so a test (tests/test_contracts.py) ties its enums and fields to this module.
"""

from __future__ import annotations

from enum import IntEnum

GROUP = "voiceflow.io"
VERSION = "v1alpha1"
PLURAL = "diarizationmodels"
KIND = "DiarizationModel"
API_VERSION = f"{GROUP}/{VERSION}"


def qualified(name: str) -> str:
    """A label, annotation or finalizer key in the platform's own domain: `voiceflow.io/<name>`."""
    return f"{GROUP}/{name}"


# spec.training.preset: the recipes a cluster may train (pipelines/presets/<name>.yaml).
TRAINING_PRESETS = ("tiny", "full")
# spec.training.hyperparameters: what a resource may override of a preset, in the CRD's spelling.
HYPERPARAMETERS = ("epochs", "batchSize", "learningRate", "maxSteps", "seed")
# spec.export.quantize.
QUANTIZATIONS = ("none", "int8")


class ExitCode(IntEnum):
    """What `voiceflow evaluate --gate` / `voiceflow register` exit with; Argo and the operator read them."""

    OK = 0
    FAILED = 1
    USAGE = 2
    GATE_REFUSED = 3
