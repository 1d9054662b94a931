"""The `voiceflow diarize` command: many files, one clear line per failure, the rest still done."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from voiceflow import SAMPLE_CONVERSATION, SAMPLE_RATE
from voiceflow.api import DiarizationResult, engine_config
from voiceflow.audio import AudioError, load_audio
from voiceflow.config import ConfigError, EngineConfig, load_engine_config
from voiceflow.embedding import EmbeddingModel, ModelError
from voiceflow.rttm import RTTMError, read_rttm
from voiceflow.segmentation.model import SegmentationModel
from voiceflow.segments import Segment
from voiceflow.selection import OfflineDiarizer, load_segmentation_model, make_offline_diarizer, stream_audio
from voiceflow_cli.errors import fail, print_error

SAMPLE_AUDIO = SAMPLE_CONVERSATION
PROGRESS_MIN_SECONDS = 60.0  # a progress bar only where one is worth looking at


def _progress_bar(total_seconds: float, name: str, quiet: bool) -> tuple[Callable[[int, int], None] | None, object]:
    if quiet or total_seconds < PROGRESS_MIN_SECONDS:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=100, desc=name, unit="%", file=sys.stderr, leave=False)

    def update(done: int, total: int) -> None:
        bar.n = int(100 * done / max(total, 1))
        bar.refresh()

    return update, bar


def diarize_one(
    path: Path,
    diarizer: OfflineDiarizer,
    config: EngineConfig,
    args: argparse.Namespace,
    segmentation_model: SegmentationModel | None = None,
) -> DiarizationResult:
    audio = load_audio(path)
    duration = len(audio) / SAMPLE_RATE
    if args.streaming:
        segments = stream_audio(audio, diarizer.embedding_model, config, segmentation_model)
        return DiarizationResult(segments, path.stem, duration)
    update, bar = _progress_bar(duration, path.name, args.quiet)
    try:
        segments = diarizer.diarize(
            audio,
            num_speakers=args.num_speakers,
            min_speakers=args.min_speakers,
            max_speakers=args.max_speakers,
            progress=update,
        )
    finally:
        if bar is not None:
            bar.close()  # type: ignore[attr-defined]
    return DiarizationResult(segments, path.stem, duration)


def reference_for(references: dict[str, list[Segment]], path: Path, several_files: bool) -> list[Segment]:
    """The reference turns of `path` in the --reference RTTM: its uri is the file's stem, or the
    RTTM's only uri when one file is diarized."""
    if path.stem in references:
        return references[path.stem]
    if len(references) == 1 and not several_files:
        return next(iter(references.values()))
    raise ValueError(f"--reference has no uri {path.stem!r} (it has {', '.join(sorted(references)) or 'none'})")


def write_outputs(
    path: Path,
    result: DiarizationResult,
    args: argparse.Namespace,
    to_stdout: bool,
    reference: list[Segment] | None = None,
) -> list[Path]:
    """RTTM to stdout, or the requested files into --out-dir; returns the files written."""
    if to_stdout:
        sys.stdout.write(result.to_rttm())
        return []
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / f"{path.stem}.rttm"]
    # Write to a temporary name first so an interrupted run never leaves a truncated RTTM.
    tmp = written[0].with_suffix(".rttm.tmp")
    tmp.write_text(result.to_rttm(), encoding="utf-8")
    tmp.replace(written[0])
    if args.json:
        written.append(out_dir / f"{path.stem}.json")
        written[-1].write_text(result.to_json(), encoding="utf-8")
    if args.plot:
        from voiceflow_cli.plot import plot_timeline

        written.append(out_dir / f"{path.stem}.png")
        plot_timeline(written[-1], result.segments, reference, title=path.name, duration=result.duration)
    return written


def run_diarize(args: argparse.Namespace) -> int:
    files = [Path(p) for p in args.audio]
    if args.sample:
        files.insert(0, SAMPLE_AUDIO)
    if not files:
        return fail("diarize", "give at least one audio file (or --sample)")
    if (args.json or args.plot) and not args.out_dir:
        return fail("diarize", "--json and --plot need --out-dir")
    if args.reference and not args.plot:
        return fail("diarize", "--reference is drawn by --plot; add --plot")
    references: dict[str, list[Segment]] = {}
    if args.reference:
        try:
            references = read_rttm(args.reference)
        except (RTTMError, OSError) as exc:
            return fail("diarize", f"--reference: {exc}")
    try:
        config = engine_config(args.pipeline, load_engine_config(args.config) if args.config else None)
        model = EmbeddingModel.load(args.model)
        segmentation = load_segmentation_model(config, args.segmentation_model)
    except (ConfigError, ModelError) as exc:
        return fail("diarize", str(exc))
    diarizer = make_offline_diarizer(config, model, segmentation)
    to_stdout = args.out_dir is None and len(files) == 1
    if args.out_dir is None and len(files) > 1:
        return fail("diarize", "several files need --out-dir")
    failures = 0
    for path in files:
        try:
            reference = reference_for(references, path, len(files) > 1) if args.reference else None
            result = diarize_one(path, diarizer, config, args, segmentation)
            if not result.segments:
                print(f"voiceflow diarize: {path}: no speech found", file=sys.stderr)
            for written in write_outputs(path, result, args, to_stdout, reference):
                print(f"wrote {written}")
        except (AudioError, ValueError, OSError) as exc:
            failures += 1
            print_error("diarize", f"{path}: {exc}" if str(path) not in str(exc) else str(exc))
    if failures and len(files) > 1:
        print_error("diarize", f"{failures} of {len(files)} files failed")
    return 1 if failures else 0
