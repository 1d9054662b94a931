"""The `voiceflow diarize` command: many files, one clear line per failure, the rest still done."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from voiceflow import SAMPLE_RATE
from voiceflow.audio import AudioError, load_audio
from voiceflow.config import ConfigError, EngineConfig, load_engine_config
from voiceflow.embedding import EmbeddingModel, ModelError
from voiceflow.rttm import segments_to_rttm
from voiceflow.segmentation.model import SegmentationModel
from voiceflow.segments import Segment
from voiceflow.selection import OfflineDiarizer, load_segmentation_model, make_offline_diarizer, make_streaming_session

SAMPLE_AUDIO = Path(__file__).resolve().parents[1] / "samples" / "conversation.wav"
PROGRESS_MIN_SECONDS = 60.0  # a progress bar only where one is worth looking at
STREAM_CHUNK = 8000  # 0.5 s per feed, as a live client would send


def stream_file(
    audio: np.ndarray,
    model: EmbeddingModel,
    config: EngineConfig,
    segmentation_model: SegmentationModel | None = None,
) -> list[Segment]:
    session = make_streaming_session(config, model, segmentation_model=segmentation_model)
    for start in range(0, len(audio), STREAM_CHUNK):
        session.feed(audio[start : start + STREAM_CHUNK])
    return session.finish()


def _progress_bar(total_seconds: float, name: str, quiet: bool) -> tuple[Callable[[int, int], None] | None, object]:
    if quiet or total_seconds < PROGRESS_MIN_SECONDS:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=100, desc=name, unit="%", file=sys.stderr, leave=False)

    def update(done: int, total: int) -> None:
        bar.n = int(100 * done / max(total, 1))
        bar.refresh()

    return update, bar


def with_cli_pipeline(config: EngineConfig, args: argparse.Namespace) -> EngineConfig:
    """The config with --pipeline applied (the flag beats the file)."""
    from dataclasses import replace

    pipeline = getattr(args, "pipeline", None)
    return replace(config, pipeline=pipeline) if pipeline else config


def diarize_one(
    path: Path,
    diarizer: OfflineDiarizer,
    config: EngineConfig,
    args: argparse.Namespace,
    segmentation_model: SegmentationModel | None = None,
) -> list[Segment]:
    audio = load_audio(path)
    if args.streaming:
        return stream_file(audio, diarizer.embedding_model, config, segmentation_model)
    update, bar = _progress_bar(len(audio) / SAMPLE_RATE, path.name, args.quiet)
    try:
        return diarizer.diarize(
            audio,
            num_speakers=args.num_speakers,
            min_speakers=args.min_speakers,
            max_speakers=args.max_speakers,
            progress=update,
        )
    finally:
        if bar is not None:
            bar.close()  # type: ignore[attr-defined]


def write_outputs(path: Path, segments: list[Segment], args: argparse.Namespace, to_stdout: bool) -> None:
    rttm = segments_to_rttm(segments, path.stem)
    if to_stdout:
        sys.stdout.write(rttm)
        return
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Write to a temporary name first so an interrupted run never leaves a truncated RTTM.
    target = out_dir / f"{path.stem}.rttm"
    tmp = target.with_suffix(".rttm.tmp")
    tmp.write_text(rttm, encoding="utf-8")
    tmp.replace(target)
    if args.json:
        (out_dir / f"{path.stem}.json").write_text(
            json.dumps({"uri": path.stem, "segments": [s.to_dict() for s in segments]}, indent=2) + "\n"
        )
    if args.plot:
        from voiceflow.plot import plot_timeline

        plot_timeline(out_dir / f"{path.stem}.png", segments, title=path.name)


def run_diarize(args: argparse.Namespace) -> int:
    files = [Path(p) for p in args.audio]
    if args.sample:
        files.insert(0, SAMPLE_AUDIO)
    if not files:
        print("voiceflow diarize: error: give at least one audio file (or --sample)", file=sys.stderr)
        return 2
    if (args.json or args.plot) and not args.out_dir:
        print("voiceflow diarize: error: --json and --plot need --out-dir", file=sys.stderr)
        return 2
    try:
        config = with_cli_pipeline(load_engine_config(args.config) if args.config else EngineConfig(), args)
        model = EmbeddingModel.load(args.model)
        segmentation = load_segmentation_model(config, args.segmentation_model)
    except (ConfigError, ModelError) as exc:
        print(f"voiceflow diarize: error: {exc}", file=sys.stderr)
        return 2
    diarizer = make_offline_diarizer(config, model, segmentation)
    to_stdout = args.out_dir is None and len(files) == 1
    if args.out_dir is None and len(files) > 1:
        print("voiceflow diarize: error: several files need --out-dir", file=sys.stderr)
        return 2
    failures = 0
    for path in files:
        try:
            segments = diarize_one(path, diarizer, config, args, segmentation)
            write_outputs(path, segments, args, to_stdout)
        except (AudioError, ValueError, OSError) as exc:
            failures += 1
            print(
                f"voiceflow diarize: {path}: {exc}" if str(path) not in str(exc) else f"voiceflow diarize: {exc}",
                file=sys.stderr,
            )
    if failures and len(files) > 1:
        print(f"voiceflow diarize: {failures} of {len(files)} files failed", file=sys.stderr)
    return 1 if failures else 0
