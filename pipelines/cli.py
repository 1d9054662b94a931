"""`voiceflow export | train | register`, and the model-evaluation side of `evaluate`.

Only argparse is imported here: the handlers import torch and friends when they run, so
`voiceflow --help` stays fast. These arguments are what the Argo workflow steps call: keep them
stable, and document any change in docs/pipelines.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    _register_export(subparsers)
    _register_train(subparsers)
    _register_register(subparsers)
    from pipelines.evaluation.cli_args import add_model_evaluation_arguments

    evaluate = subparsers.choices.get("evaluate")
    if evaluate is None:  # the engine's commands are absent: a model-only evaluate
        evaluate = subparsers.add_parser("evaluate", help="score an embedding model (DER, speed)")
    # One `evaluate` command: the engine's parser gains the gate/manifest options, and `--model`
    # runs go to the pipelines' evaluation (which reuses the engine's harness); RTTM scoring,
    # --hyp and --streaming stay with the engine's handler.
    add_model_evaluation_arguments(evaluate)
    evaluate.set_defaults(handler=_evaluate, engine_handler=evaluate.get_default("handler"))


def _register_export(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a trained checkpoint (or the pretrained GE2E) to ONNX, optionally INT8",
        description="voiceflow export CHECKPOINT --out model.onnx [--quantize int8] | "
        "voiceflow export --pretrained ge2e --out voiceflow/models/ge2e.onnx | "
        "voiceflow export MODEL.onnx --quantize int8 --out model-int8.onnx (an exported float bundle to INT8)",
    )
    p.add_argument(
        "checkpoint",
        nargs="?",
        help="model.pt (or checkpoint.pt) written by `voiceflow train`, or an exported float bundle's .onnx "
        "(with --quantize int8: its INT8 bundle, background mean and PLDA refitted on the INT8 embeddings)",
    )
    p.add_argument("--pretrained", choices=["ge2e"], help="export a pretrained model instead of a checkpoint")
    p.add_argument(
        "--streams",
        type=int,
        help="export a stride-1 recurrent model with a per-frame output, read by the engine in K staggered "
        "streams (default: the K it was trained for, student.streams; 0 = a window model)",
    )
    p.add_argument("--out", required=True, help="ONNX file to write (metadata goes to the same name .json)")
    p.add_argument("--quantize", choices=["int8"], help="INT8 weights via onnxruntime.quantization")
    p.add_argument(
        "--no-calibrate",
        dest="calibrate",
        action="store_false",
        help="leave out the merge-threshold shift the checkpoint was calibrated with at the end of training "
        "(data.calibration_ami_files); the engine then reads the model on GE2E's scale",
    )
    p.add_argument(
        "--no-background",
        dest="background",
        action="store_false",
        help="leave the background mean out of the bundle (streaming then cannot remove what all embeddings "
        "share); by default it comes from the checkpoint, else from the training audio its config names",
    )
    p.add_argument(
        "--no-plda",
        dest="plda",
        action="store_false",
        help="do not build the model's PLDA (by default it is fitted on the exported model's embeddings of the "
        "LibriSpeech training speakers and sealed into the bundle, so the engine clusters it with VBx; without "
        "one it runs AHC)",
    )
    p.add_argument(
        "--data-root",
        help="training data for the PLDA (librispeech-train-clean-100/, augmentation/); default: the checkpoint "
        "config's data root, else $VOICEFLOW_SHARED_DATA or ../shared/data. Missing data: no PLDA, said so",
    )
    p.set_defaults(handler=_export)


def _register_train(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a speaker-embedding student (distilled from GE2E) or the segmentation model",
        description="Resumable: rerunning the same command in the same --out continues from its checkpoint. "
        "Presets segmentation-tiny / segmentation-full, or a --config whose YAML has `kind: segmentation`, "
        "train the overlap-aware segmentation model (steps, not epochs).",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="YAML/JSON training config (`kind: segmentation` for the segmentation model)")
    src.add_argument(
        "--preset",
        help="a bundled config: tiny (tests, < 1 min), full (the shipped student), "
        "segmentation-tiny, segmentation-full",
    )
    p.add_argument("--out", required=True, help="run folder: checkpoint.pt, model.pt, curves.json/png")
    from pipelines.training.overrides import add_override_arguments

    add_override_arguments(p)  # --data-root, --seed, --epochs | --steps, --lr, ... (one table)
    p.add_argument("--max-steps", type=int, help="stop (with a checkpoint) after this many steps in total")
    p.add_argument("--restart", action="store_true", help="discard an existing checkpoint in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs in pods)")
    p.set_defaults(handler=_train)


def _register_register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "register",
        help="gate an evaluated model against the default and store its whole bundle as a version (with manifest)",
        description="Exit 0: stored and passed; 3: stored but refused by the gate (the manifest says why); "
        "1: the evaluated bundle is incomplete or changed since it was sealed.",
    )
    p.add_argument("--model", required=True, help="the exported ONNX model that was evaluated")
    p.add_argument("--metrics", required=True, help="JSON written by `voiceflow evaluate --model ... --json-out`")
    p.add_argument("--version", required=True, help="version name; the folder under --store")
    p.add_argument("--store", required=True, help="artifact folder (a mounted volume): STORE/VERSION/model.*")
    p.add_argument("--der-margin", type=float, default=0.0, help="allowed absolute DER increase (0.01 = 1 point)")
    p.add_argument("--baseline", help="baseline model when the metrics carry none (default: bundled GE2E)")
    p.set_defaults(handler=_register)


def _register(args: argparse.Namespace) -> int:
    from pipelines.evaluation.register import register
    from voiceflow.bundle import BundleError
    from voiceflow.contracts import ExitCode

    baseline = Path(args.baseline) if args.baseline else None
    try:
        code, _ = register(
            Path(args.model), Path(args.metrics), args.version, Path(args.store), args.der_margin, baseline
        )
    except BundleError as exc:  # the evaluated bundle is incomplete or was changed after the gate scored it
        print(f"voiceflow register: error: {exc}", file=sys.stderr)
        return int(ExitCode.FAILED)
    return code


def _export(args: argparse.Namespace) -> int:
    if bool(args.pretrained) == bool(args.checkpoint):
        print("voiceflow export: error: give either CHECKPOINT or --pretrained ge2e", file=sys.stderr)
        return 2
    if args.checkpoint and Path(args.checkpoint).suffix == ".onnx":
        return _quantize_bundle(args)
    if args.checkpoint and Path(args.checkpoint).is_file():
        from pipelines.segmentation.export import export_segmentation_checkpoint, is_segmentation_checkpoint

        if is_segmentation_checkpoint(Path(args.checkpoint)):
            if args.quantize or args.streams:
                print(
                    "voiceflow export: error: --quantize/--streams are not supported for segmentation models",
                    file=sys.stderr,
                )
                return 2
            result = export_segmentation_checkpoint(Path(args.checkpoint), Path(args.out))
            print(f"{result.path}  sha256 {result.sha256}  version {result.metadata['version']}")
            return 0
    if args.pretrained:
        if args.quantize or args.streams:
            print("voiceflow export: error: --quantize and --streams apply to trained checkpoints", file=sys.stderr)
            return 2
        from pipelines.export.ge2e import export_ge2e

        print(f"{args.out}  sha256 {export_ge2e(Path(args.out))}")
        return 0
    from pipelines.export.checkpoint import export_checkpoint

    result = export_checkpoint(
        Path(args.checkpoint), Path(args.out), args.quantize, args.streams, args.calibrate, args.background
    )
    digest = _export_plda(result.path, result.metadata, args.data_root) if args.plda else result.bundle_digest
    print(f"{result.path}  sha256 {result.sha256}  version {result.metadata['version']}  bundle {digest}")
    if "merge_threshold_shift" in result.metadata:
        print(
            f"calibrated on {', '.join(result.metadata['calibration']['recordings'])}: "
            f"merge_threshold_shift {result.metadata['merge_threshold_shift']:+.4f}"
        )
    return 0


def _quantize_bundle(args: argparse.Namespace) -> int:
    import json

    from pipelines.export.int8_bundle import quantize_bundle

    if args.quantize != "int8" or args.streams is not None or not args.plda:
        print(
            "voiceflow export: error: an exported bundle (.onnx) is only re-exported as --quantize int8 "
            "(its reading is kept: no --streams; its PLDA is refitted: no --no-plda)",
            file=sys.stderr,
        )
        return 2
    try:
        data_root = Path(args.data_root) if args.data_root else None
        bundle = quantize_bundle(Path(args.checkpoint), Path(args.out), data_root)
    except (ValueError, OSError) as exc:  # a broken bundle (BundleError), missing training audio
        print(f"voiceflow export: error: {exc}", file=sys.stderr)
        return 2
    meta = json.loads(Path(args.out).with_suffix(".json").read_text())
    print(f"{args.out}  sha256 {meta['sha256']}  version {meta['version']}  bundle {bundle.digest}")
    if not meta.get("plda", {}).get("built"):
        print(f"voiceflow export: warning: no PLDA: {meta.get('plda', {}).get('reason')}", file=sys.stderr)
    return 0


def _train(args: argparse.Namespace) -> int:
    from pipelines.train_command import run_train

    return run_train(args)


def _evaluate(args: argparse.Namespace) -> int:
    engine_handler = getattr(args, "engine_handler", None)
    if getattr(args, "suite", None) and not (args.gate or args.promote):
        from pipelines.evaluation.suite.command import run_suite_evaluation

        return run_suite_evaluation(args)
    engine_only = getattr(args, "hyp", None) or getattr(args, "streaming", False)
    if not args.model or engine_only:
        if engine_handler is None:
            print("voiceflow evaluate: error: --model is required", file=sys.stderr)
            return 2
        return int(engine_handler(args) or 0)
    from pipelines.evaluation.command import run_model_evaluation

    return run_model_evaluation(args)


def _export_plda(model: Path, metadata: dict[str, Any], data_root: str | None) -> str:
    """Build the exported model's PLDA into its bundle (or say why not); the resealed bundle's digest."""
    from pipelines.export.plda import checkpoint_data_root, export_plda
    from voiceflow.bundle import verify_bundle

    data = Path(data_root) if data_root else checkpoint_data_root(metadata.get("training", {}).get("config", {}))
    record = export_plda(model, data)
    if record["built"]:
        print(
            f"PLDA built from {record['pseudo_speakers']} training pseudo-speakers ({record['windows']} windows) "
            f"and sealed into the bundle: the engine clusters this model with VBx"
        )
    else:
        print(f"voiceflow export: warning: no PLDA: {record['reason']}", file=sys.stderr)
    return verify_bundle(model).digest
