"""The `voiceflow` command lines the workflow steps run.

Every step of every workflow is a real `voiceflow` sub-command, so what runs in-cluster is exactly
what a developer runs locally. The argv lists here are the single source: the builders template
them, and tests/workflows parses each one with `voiceflow.cli.main.build_parser()`.
Argo substitutes `{{workflow.parameters.*}}` before the container starts, so the placeholders are
plain strings as far as argparse is concerned.
"""

from __future__ import annotations

from dataclasses import dataclass

# Inside every step pod: the shared workspace volume (a volumeClaimTemplate of the workflow).
WORKSPACE = "/workspace"
DATA_DIR = f"{WORKSPACE}/data"
RUN_DIR = f"{WORKSPACE}/run"
CHECKPOINT = f"{RUN_DIR}/checkpoint.pt"
MODEL = f"{RUN_DIR}/model.onnx"
METRICS = f"{RUN_DIR}/metrics.json"


def param(name: str) -> str:
    """An Argo workflow-parameter reference."""
    return "{{workflow.parameters." + name + "}}"


@dataclass(frozen=True)
class StepCommand:
    """One workflow step: its template name and the argv after `voiceflow`."""

    name: str
    args: tuple[str, ...]


def prepare_step() -> StepCommand:
    return StepCommand("prepare", ("prepare", "--dataset", param("dataset"), "--out", DATA_DIR))


def train_step(config_is_file: bool) -> StepCommand:
    # `--config FILE` wins over `--preset NAME`; which flag is fixed when the workflow is rendered.
    source = ("--config", param("config")) if config_is_file else ("--preset", param("config"))
    return StepCommand(
        "train",
        ("train", *source, "--data", DATA_DIR, "--out", RUN_DIR, "--seed", param("seed")),
    )


def export_step() -> StepCommand:
    return StepCommand("export", ("export", CHECKPOINT, "--out", MODEL, "--quantize", param("quantize")))


def evaluate_step() -> StepCommand:
    # The gate evaluates the artifact that will be served (INT8 included), hence export first.
    return StepCommand(
        "evaluate",
        ("evaluate", "--model", MODEL, "--data", DATA_DIR, "--json", METRICS),
    )


def register_step() -> StepCommand:
    return StepCommand(
        "register",
        (
            "register",
            "--model",
            MODEL,
            "--metrics",
            METRICS,
            "--version",
            param("version"),
            "--store",
            param("artifacts"),
            "--der-margin",
            param("der-margin"),
        ),
    )


def batch_step() -> StepCommand:
    return StepCommand(
        "batch",
        (
            "batch",
            param("input"),
            "--out-dir",
            param("output"),
            "--model",
            param("model"),
            "--workers",
            param("workers"),
        ),
    )


# Every command any workflow may run, for the CLI-contract test.
STEP_COMMANDS: tuple[StepCommand, ...] = (
    prepare_step(),
    train_step(config_is_file=False),
    train_step(config_is_file=True),
    export_step(),
    evaluate_step(),
    register_step(),
    batch_step(),
)
