"""The options `voiceflow evaluate` gains for `--model` (argparse only: imported at CLI start-up).

The engine owns the `evaluate` command (`--data DIR` scores RTTMs); it calls
`add_model_evaluation_arguments(parser)` while registering and, when `args.model` is set,
hands over to `pipelines.evaluation.command.run_model_evaluation(args)`.
"""

from __future__ import annotations

import argparse

DEFAULT_MARGIN = 0.0


def add_model_evaluation_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model evaluation (pipelines)")
    group.add_argument("--model", help="ONNX embedding model to score on the dev sets (DER + ms/window)")
    group.add_argument(
        "--baseline",
        help="model to compare against for the gate (default: the bundled voiceflow/models/ge2e.onnx)",
    )
    group.add_argument(
        "--gate", action="store_true", help="also evaluate the baseline and apply the promotion gate"
    )
    group.add_argument(
        "--margin",
        type=float,
        default=DEFAULT_MARGIN,
        help="gate: allowed DER increase over the baseline, absolute (0.01 = 1 point; default 0)",
    )
    group.add_argument("--naive", action="store_true", help="also report the naive floor with each model")
    group.add_argument("--sets", default="ami-dev,sim-dev", help="comma-separated dev sets (default: both)")
    group.add_argument("--report", help="write the JSON report here")
    group.add_argument(
        "--no-manifest",
        action="store_true",
        help="do not write <model>.manifest.json beside the model",
    )
    group.add_argument(
        "--promote",
        action="store_true",
        help="if the gate passes, copy the model to voiceflow/models/<--promote-name>.onnx and "
        "point voiceflow/models/default.json at it (ge2e.onnx is never replaced)",
    )
    group.add_argument("--promote-name", default="student", help="file stem for a promoted model")
    group.add_argument(
        "--models-dir", help="where --promote writes (default: the package's voiceflow/models)"
    )
    group.add_argument(
        "--speed-seconds", type=float, default=2.0, help="time budget per speed measurement (0 = skip)"
    )
