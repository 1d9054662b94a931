"""The options `voiceflow evaluate` gains for model evaluation (argparse only: loaded at CLI start).

The engine owns the `evaluate` command (RTTM scoring, `--data`, `--model`, `--json-out`, its
`--baseline` naive-floor flag). `pipelines.cli.register` adds the options below to that same
parser (skipping any the engine already defines) and routes `--model` runs to
`pipelines.evaluation.command.run_model_evaluation`, which reuses the engine's harness.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

DEFAULT_MARGIN = 0.0
MAX_PHASES = 20  # pipelines.evaluation.devsets.MAX_PHASES, kept here so the CLI's start loads no engine


def phase_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--phases must be an integer, not {text!r}") from None
    if not 1 <= value <= MAX_PHASES:
        raise argparse.ArgumentTypeError(f"--phases must be 1..{MAX_PHASES}, not {value}")
    return value


def _missing_options_adder(parser: argparse.ArgumentParser, title: str, existing: set[str]) -> Callable[..., None]:
    """add(flag, **kwargs) into a new argument group titled `title`, skipping the flags in `existing`
    (the engine's `evaluate` already defines some, e.g. --model, --data, --json-out)."""
    group = parser.add_argument_group(title)

    def add(flag: str, **kwargs: Any) -> None:
        if flag not in existing:
            group.add_argument(flag, **kwargs)

    return add


def add_model_evaluation_arguments(parser: argparse.ArgumentParser) -> None:
    existing = set(parser._option_string_actions)
    add = _missing_options_adder(parser, "model evaluation, gate and promotion (pipelines)", existing)
    add("--model", help="ONNX embedding model to score on the dev sets (DER + ms/window)")
    add("--data", help="a dev-set folder (audio + reference RTTM) instead of the built-in dev sets")
    add("--json-out", help="write the JSON report (model, baseline, gate) here")
    add("--gate", action="store_true", help="also evaluate the current default and apply the promotion gate")
    add(
        "--margin",
        type=float,
        default=DEFAULT_MARGIN,
        help="gate: allowed DER increase over the baseline, absolute (0.01 = 1 point; default 0)",
    )
    add(
        "--baseline-model",
        help="the gate's baseline (default: the model the engine serves now: the model store's promoted "
        "bundle when intact, else the packaged default)",
    )
    add(
        "--baseline-report",
        help="gate against this earlier `--json-out` of the baseline instead of re-evaluating it "
        "(it must have been scored on the same dev sets)",
    )
    add("--naive", action="store_true", help="also report the naive floor with each model")
    add(
        "--sets",
        default="ami-dev,sim-dev",
        help="built-in sets to use (default: ami-dev,sim-dev); ami-train (the ten AMI train excerpts) is "
        "held out for a model that never trained on them, and refused for one that did",
    )
    add(
        "--phases",
        type=phase_count,
        default=1,
        help="read every recording at N positions of the 0.2 s window grid and pool them (1-20; "
        "default 1): on a few short meetings one position can decide a merge",
    )
    add("--no-manifest", action="store_true", help="do not write <model>.manifest.json beside the model")
    add(
        "--promote",
        action="store_true",
        help="if the gate passes, publish the model's sealed bundle (with this manifest) into the model "
        "store, whose `current` the engine then serves by default; the installed package is never written",
    )
    add(
        "--model-store",
        help="the model store --promote publishes into and the gate's baseline is read from (default: "
        "$VOICEFLOW_MODEL_STORE, else $XDG_DATA_HOME/voiceflow/models, else ~/.local/share/voiceflow/models)",
    )
    add("--speed-seconds", type=float, default=2.0, help="time budget per speed measurement (0 = skip)")
    add_suite_arguments(parser, existing)


def add_suite_arguments(parser: argparse.ArgumentParser, existing: set[str]) -> None:
    """The dev suite (pipelines.evaluation.suite): systems side by side, and the gate's data."""
    add = _missing_options_adder(parser, "dev suite (issue 22): docs/evaluation.md", existing)
    add(
        "--suite",
        help="score on the seeded dev suite: `dev` (108 simulated recordings of held-out voices over the "
        "speaker-count and channel strata + the 12 AMI excerpts in 4-fold CV) or `quick` (a smoke test). "
        "Alone: default and naive systems per stratum; with --model --gate: the stratum-aware gate",
    )
    add(
        "--system",
        action="append",
        help="another system for --suite (repeatable): a built-in (default, naive-oracle, naive-tuned) or "
        "NAME=KEY=VALUE,... with dotted engine-config keys, e.g. nme=offline.clustering.algorithm=nme-sc; "
        "model=PATH picks another embedding model",
    )
    add(
        "--suite-cache",
        help="where the rendered suite, VAD, embeddings and hypotheses are cached "
        "(default: $VOICEFLOW_SUITE_CACHE, else ~/.cache/voiceflow/suite)",
    )
    add("--suite-data", help="the shared data folder the suite is built from (default: ../shared/data)")
    add("--markdown-out", help="--suite: write the Markdown tables here")
