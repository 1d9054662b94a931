"""The `voiceflow` command lines the workflow steps run.

Every step of every workflow is a real `voiceflow` sub-command, so what runs in-cluster is exactly
what a developer runs locally. The argv lists here are the single source: the builders template
them, and tests/workflows parses each rendered one with `voiceflow_cli.main.build_parser()`.
Argo substitutes `{{workflow.parameters.*}}` before the container starts; the test does the same.

Dataset layout (the `dataset` location, mounted or fetched to DATASET_ROOT): what
`voiceflow train --data-root` reads (librispeech-train-clean-100/, ami-excerpts/, augmentation/)
plus librispeech-dev/ (held-out speakers) from which the prepare step simulates the dev set.
"""

from __future__ import annotations

from dataclasses import dataclass

# Inside every step pod: the shared workspace volume (a volumeClaimTemplate of the workflow).
WORKSPACE = "/workspace"
DEV_DIR = f"{WORKSPACE}/dev"
MODEL = f"{WORKSPACE}/model.onnx"
METRICS = f"{WORKSPACE}/metrics.json"
# The model store (the `artifacts` PVC) is mounted here. Training writes its run folder into it,
# so a retried workflow resumes from the last checkpoint; register stores the gated bundle there
# (STORE/<version>/model.*), which the operator's export Job publishes after the workflow (and its
# workspace) is gone.
STORE = "/artifacts"
RUN_DIR = f"{STORE}/{{{{workflow.parameters.version}}}}/run"
TRAINED_MODEL = f"{RUN_DIR}/model.pt"
DATASET_MOUNT = "/dataset"  # a PVC dataset, mounted read-only
DATASET_FETCHED = f"{WORKSPACE}/dataset"  # an object-store dataset, fetched by Argo


def param(name: str) -> str:
    """An Argo workflow-parameter reference."""
    return "{{workflow.parameters." + name + "}}"


@dataclass(frozen=True)
class StepCommand:
    """One workflow step: its template name and the argv after `voiceflow`."""

    name: str
    args: tuple[str, ...]


def prepare_step(dataset_root: str) -> StepCommand:
    # The dev set the gate scores on: simulated conversations with exact references.
    return StepCommand(
        "prepare",
        (
            "simulate",
            "--librispeech", f"{dataset_root}/librispeech-dev",
            "--out-dir", DEV_DIR,
            "--count", param("dev-conversations"),
            "--seed", param("seed"),
        ),
    )


def train_step(
    config_is_file: bool, dataset_root: str, overrides: tuple[str, ...] = ()
) -> StepCommand:
    # `--config FILE` or `--preset NAME`: which flag is fixed when the workflow is rendered.
    source = ("--config", param("config")) if config_is_file else ("--preset", param("config"))
    return StepCommand(
        "train",
        (
            "train", *source,
            "--data-root", dataset_root,
            "--out", RUN_DIR,
            "--seed", param("seed"),
            "--no-progress",  # a progress bar is noise in pod logs
            *overrides,
        ),
    )


def export_step(quantize: bool) -> StepCommand:
    # `--quantize` only takes int8; FP32 is the absence of the flag, decided at render time.
    args = ("export", TRAINED_MODEL, "--out", MODEL)
    return StepCommand("export", (*args, "--quantize", "int8") if quantize else args)


# The gate's data: the dev suite (issue 22), built from the dataset's held-out LibriSpeech voices,
# noise and RIRs, plus its 12 AMI excerpts; rendered once into the workspace and reused by register.
GATE_SUITE = "dev"
SUITE_CACHE = f"{WORKSPACE}/suite-cache"
# Every AMI excerpt of the suite is scored at this many positions of the window grid: on a 30 s
# meeting one position alone can flip a merge decision and, with it, the gate.
GATE_PHASES = "5"


def evaluate_step(dataset_root: str) -> StepCommand:
    # Export runs first so the gate scores the artifact that will be served (INT8 included).
    return StepCommand(
        "evaluate",
        (
            "evaluate",
            "--model", MODEL,
            "--suite", GATE_SUITE,
            "--suite-data", dataset_root,
            "--suite-cache", SUITE_CACHE,
            "--phases", GATE_PHASES,
            "--json-out", METRICS,
        ),
    )


def register_step() -> StepCommand:
    # Applies the DER gate and stores the evaluated model's whole bundle (every sidecar, the PLDA
    # included, plus the gate's manifest; sealed) under STORE/<version>/; exits 3 when the
    # gate refuses (the version is stored anyway, its manifest says why). It scores the baseline on
    # the suite the metrics name (same dataset path, same cache), so it needs the dataset too.
    return StepCommand(
        "register",
        (
            "register",
            "--model", MODEL,
            "--metrics", METRICS,
            "--version", param("version"),
            "--store", STORE,
            "--der-margin", param("der-margin"),
        ),
    )


def batch_step(custom_model: bool) -> StepCommand:
    # Without --model the bundled default model is used; decided at render time.
    model = ("--model", param("model")) if custom_model else ()
    return StepCommand(
        "batch",
        ("batch", param("input"), "--out-dir", param("output"), *model, "--workers", param("workers")),
    )


# Every command any workflow may run, for the CLI-contract test.
STEP_COMMANDS: tuple[StepCommand, ...] = (
    prepare_step(DATASET_MOUNT),
    train_step(config_is_file=False, dataset_root=DATASET_MOUNT),
    train_step(config_is_file=True, dataset_root=DATASET_FETCHED,
               overrides=("--epochs", "3", "--batch-size", "16", "--lr", "0.001", "--max-steps", "10")),
    export_step(quantize=False),
    export_step(quantize=True),
    evaluate_step(DATASET_MOUNT),
    register_step(),
    batch_step(custom_model=True),
    batch_step(custom_model=False),
)
