"""`voiceflow diarize`, `voiceflow batch`, `voiceflow evaluate`, `voiceflow simulate`: argument parsing only here.

Heavy imports happen inside the handlers so `voiceflow --help` stays instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from voiceflow.registry import PIPELINES, describe_pipelines


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model / --pipeline / --segmentation-model: the same three options wherever the engine diarizes."""
    parser.add_argument("--model", help="embedding model (ONNX); default: the bundled model")
    parser.add_argument(
        "--pipeline",
        choices=PIPELINES,
        help=f"{describe_pipelines()}. Default: the config's, else the gate's choice",
    )
    parser.add_argument("--segmentation-model", help="segmentation network (ONNX); default: the bundled one")


def register(subparsers: Any) -> None:
    diarize = subparsers.add_parser(
        "diarize", help="who spoke when: RTTM for each audio file", description="Diarize WAV/FLAC files."
    )
    diarize.add_argument("audio", nargs="*", help="audio files (WAV/FLAC/OGG, any rate, mono or multi-channel)")
    diarize.add_argument("--sample", action="store_true", help="diarize the sample conversation bundled with VoiceFlow")
    diarize.add_argument("--out-dir", help="write <stem>.rttm (and .json/.png) here; default: RTTM to stdout")
    diarize.add_argument("--streaming", action="store_true", help="use the streaming session (as the server does)")
    diarize.add_argument("--num-speakers", type=_positive_int, help="exact number of speakers, when known")
    diarize.add_argument("--min-speakers", type=_positive_int, help="at least this many speakers")
    diarize.add_argument("--max-speakers", type=_positive_int, help="at most this many speakers")
    add_model_arguments(diarize)
    diarize.add_argument("--config", help="pipeline settings (YAML or JSON) overriding the defaults")
    diarize.add_argument("--json", action="store_true", help="also write <stem>.json")
    diarize.add_argument("--plot", action="store_true", help="also write a timeline <stem>.png spanning the whole file")
    diarize.add_argument(
        "--reference",
        metavar="FILE.rttm",
        help="reference RTTM drawn under the hypothesis in --plot (uri = the audio file's stem)",
    )
    diarize.add_argument("--quiet", action="store_true", help="no progress bar")
    diarize.set_defaults(handler=_run_diarize)

    register_batch(subparsers)

    evaluate = subparsers.add_parser(
        "evaluate",
        help="DER of RTTMs against references, or of a model on the dev sets",
        description="Score hypothesis RTTMs against references (uri-matched, UEM aware), or with "
        "--dev/--model run the engine on the development sets and print DER beside the naive floor.",
    )
    evaluate.add_argument("--data", help="directory with reference *.rttm (and *.uem), plus audio when no --hyp")
    evaluate.add_argument("--hyp", help="hypothesis RTTM file or directory; default: diarize the audio in --data")
    evaluate.add_argument("--dev", action="store_true", help="score on AMI dev + simulated dev (needs ../shared)")
    evaluate.add_argument("--model", help="embedding model (ONNX) to evaluate; implies --dev when no --data")
    evaluate.add_argument("--streaming", action="store_true", help="evaluate the streaming session too")
    evaluate.add_argument("--baseline", action="store_true", help="also score the naive floor (oracle count)")
    evaluate.add_argument(
        "--pipeline",
        choices=[*PIPELINES, "all"],
        help="which pipeline(s) --dev scores (default: the default pipeline); all = side by side",
    )
    evaluate.add_argument("--segmentation-model", help="segmentation network (ONNX); default: the bundled one")
    evaluate.add_argument("--json-out", help="write the report as JSON here")
    evaluate.set_defaults(handler=_run_evaluate)

    simulate = subparsers.add_parser("simulate", help="build simulated conversations with exact references")
    simulate.add_argument("--librispeech", required=True, help="directory of LibriSpeech FLAC files")
    simulate.add_argument("--out-dir", required=True, help="write <name>.wav, .rttm and .uem per conversation here")
    simulate.add_argument("--count", type=_positive_int, default=12, help="how many conversations (default 12)")
    simulate.add_argument(
        "--seed", type=int, default=1000, help="random seed: the same seed, the same set (default 1000)"
    )
    simulate.set_defaults(handler=_run_simulate)


def _run_diarize(args: argparse.Namespace) -> int:
    from voiceflow_cli.diarize import run_diarize

    return run_diarize(args)


def _run_evaluate(args: argparse.Namespace) -> int:
    from voiceflow_cli.evaluate import run_evaluate

    return run_evaluate(args)


def _run_simulate(args: argparse.Namespace) -> int:
    from voiceflow_cli.simulate import run_simulate

    return run_simulate(args)


def register_batch(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "batch",
        help="diarize many files with a worker pool (resumable; failures never stop the rest)",
        description="INPUT is a folder (audio files, recursively) or a manifest (.txt: one path per "
        'line; .jsonl: {"path": ..., "num_speakers": ...} per line).',
    )
    p.add_argument("input", help="INPUT_DIR or MANIFEST (.txt / .jsonl)")
    p.add_argument("--out-dir", required=True, help="one RTTM per input + summary.json")
    p.add_argument("--workers", type=_positive_int, default=2, help="worker processes (default 2)")
    p.add_argument("--num-speakers", type=_positive_int, help="known speaker count for every file")
    p.add_argument("--overwrite", action="store_true", help="redo files whose RTTM already exists")
    add_model_arguments(p)
    p.set_defaults(handler=_run_batch)


def _run_batch(args: argparse.Namespace) -> int:
    from pipelines.batch.runner import run_batch

    summary = run_batch(
        Path(args.input),
        Path(args.out_dir),
        model=args.model,
        workers=args.workers,
        num_speakers=args.num_speakers,
        overwrite=args.overwrite,
        pipeline=args.pipeline,
        segmentation_model=args.segmentation_model,
    )
    return 1 if summary.failed else 0
