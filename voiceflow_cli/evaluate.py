"""The `voiceflow evaluate` command: DER tables from RTTMs, or the engine on the dev sets."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from voiceflow.rttm import RTTMError, read_rttm, read_uem
from voiceflow.scoring import DERReport, score_der
from voiceflow.segments import Segment

if TYPE_CHECKING:  # the handlers import the engine lazily, so `voiceflow --help` stays instant
    from pipelines.evaluation.devsets import DiarizeFn, SetScore
    from voiceflow.config import EngineConfig
    from voiceflow.embedding import EmbeddingModel
    from voiceflow.segmentation.model import SegmentationModel
    from voiceflow.selection import OfflineDiarizer


def load_rttm_tree(path: Path) -> dict[str, list[Segment]]:
    files = sorted(path.glob("*.rttm")) if path.is_dir() else [path]
    merged: dict[str, list[Segment]] = {}
    for file in files:
        for uri, segs in read_rttm(file).items():
            merged.setdefault(uri, []).extend(segs)
    return merged


def load_uem_tree(path: Path) -> dict[str, list[tuple[float, float]]]:
    merged: dict[str, list[tuple[float, float]]] = {}
    for file in sorted(path.glob("*.uem")):
        merged.update(read_uem(file))
    return merged


def format_reports(collar0: DERReport, collar025: DERReport) -> str:
    lines = [f"{'uri':<24} {'DER':>7} {'DER.25':>7} {'FA':>7} {'miss':>7} {'conf':>7} {'speech':>8}"]
    for uri, row in collar0.per_file.items():
        total = row["total"] or 1.0
        lines.append(
            f"{uri:<24} {100 * row['der']:6.2f}% {100 * collar025.per_file[uri]['der']:6.2f}% "
            f"{100 * row['false_alarm'] / total:6.2f}% {100 * row['missed'] / total:6.2f}% "
            f"{100 * row['confusion'] / total:6.2f}% {row['total']:7.1f}s"
        )
    r = collar0.component_rates()
    lines.append(
        f"{'TOTAL':<24} {100 * r['der']:6.2f}% {100 * collar025.der:6.2f}% {100 * r['false_alarm']:6.2f}% "
        f"{100 * r['missed']:6.2f}% {100 * r['confusion']:6.2f}% {r['total_speech']:7.1f}s"
    )
    lines.append("scorer: pyannote.metrics DiarizationErrorRate, overlap scored; DER collar 0, DER.25 collar 0.25 s")
    return "\n".join(lines)


def _diarize_directory(data: Path, uris: list[str]) -> dict[str, list[Segment]]:
    from voiceflow.audio import AudioError
    from voiceflow.pipeline import Diarizer

    diarizer = Diarizer()
    hyps: dict[str, list[Segment]] = {}
    for uri in uris:
        candidates = [p for ext in (".wav", ".flac", ".ogg") if (p := data / f"{uri}{ext}").exists()]
        if not candidates:
            print(f"voiceflow evaluate: {uri}: no audio file in {data}; scored as all missed", file=sys.stderr)
            continue
        try:
            hyps[uri] = diarizer.diarize_file(candidates[0])
        except AudioError as exc:
            print(f"voiceflow evaluate: {exc}; scored as all missed", file=sys.stderr)
    return hyps


def _offline(diarizer: OfflineDiarizer) -> DiarizeFn:
    return lambda audio, _count: diarizer.diarize(audio)


def _streaming(model: EmbeddingModel, config: EngineConfig, segmentation: SegmentationModel | None) -> DiarizeFn:
    from voiceflow.selection import stream_audio

    return lambda audio, _count: stream_audio(audio, model, config, segmentation)


def print_gate(results: dict[str, dict[str, SetScore]], pipelines: list[str], mode: str) -> None:
    """Which pipeline the dev sets say should be the default for `mode`, and why."""
    from pipelines.evaluation.gate import choose_default
    from voiceflow.registry import DEFAULT_PIPELINE

    scores = {
        p: {name: score.collar0.der for name, score in sets_.items()}
        for p in pipelines
        for system, sets_ in results.items()
        if system.startswith(f"{p} {mode} ")
    }
    winner, decisions = choose_default(scores, "embedding")
    for decision in decisions:
        print(f"{mode} {decision.line('embedding')}")
    print(f"{mode} gate: the default should be {winner!r} (shipped default: {DEFAULT_PIPELINE!r})")


def run_dev_evaluation(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from pipelines.evaluation.devsets import evaluate_sets, format_table, load_dev_sets, naive_baseline
    from voiceflow.config import EngineConfig
    from voiceflow.embedding import EmbeddingModel
    from voiceflow.registry import DEFAULT_PIPELINE, PIPELINES
    from voiceflow.selection import load_segmentation_model, make_offline_diarizer

    model = EmbeddingModel.load(args.model)
    chosen = getattr(args, "pipeline", None) or DEFAULT_PIPELINE
    pipelines = list(PIPELINES) if chosen == "all" else [chosen]
    sets = load_dev_sets()
    results = {}
    for pipeline in pipelines:
        config = replace(EngineConfig(), pipeline=pipeline)
        segmentation = load_segmentation_model(config, getattr(args, "segmentation_model", None))
        name = model.version if segmentation is None else f"{segmentation.version} + {model.version}"
        diarizer = make_offline_diarizer(config, model, segmentation)
        results[f"{pipeline} offline ({name})"] = evaluate_sets(sets, _offline(diarizer))
        if args.streaming:
            results[f"{pipeline} streaming ({name})"] = evaluate_sets(sets, _streaming(model, config, segmentation))
    if args.baseline:
        results["naive floor (oracle count)"] = evaluate_sets(sets, naive_baseline(model))
    print(format_table(results))
    if len(pipelines) > 1:
        print_gate(results, pipelines, "offline")
        if args.streaming:
            print_gate(results, pipelines, "streaming")
    print(
        "scorer: pyannote.metrics, overlap scored; DER collar 0, DER.25 collar 0.25 s; speaker count not given; "
        "miss.ov: missed speech inside overlapped reference speech (collar 0), part of miss"
    )
    if args.json_out:
        payload = {system: {name: s.row() for name, s in sets_.items()} for system, sets_ in results.items()}
        Path(args.json_out).write_text(json.dumps(payload, indent=2) + "\n")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    if args.dev or (args.model and not args.data):
        return run_dev_evaluation(args)
    if not args.data:
        print("voiceflow evaluate: error: give --data DIR, or --dev", file=sys.stderr)
        return 2
    data = Path(args.data)
    if not data.is_dir():
        print(f"voiceflow evaluate: error: {data}: not a directory", file=sys.stderr)
        return 2
    try:
        references = load_rttm_tree(data)
        uems = load_uem_tree(data)
        if not references:
            print(f"voiceflow evaluate: error: no reference *.rttm in {data}", file=sys.stderr)
            return 2
        if args.hyp:
            hyp_path = Path(args.hyp)
            if not hyp_path.exists():
                print(f"voiceflow evaluate: error: {hyp_path}: no such file or directory", file=sys.stderr)
                return 2
            hypotheses = load_rttm_tree(hyp_path)
        else:
            hypotheses = _diarize_directory(data, sorted(references))
    except (RTTMError, OSError, UnicodeDecodeError) as exc:
        print(f"voiceflow evaluate: error: {exc}", file=sys.stderr)
        return 2
    collar0 = score_der(references, hypotheses, uems, collar=0.0)
    collar025 = score_der(references, hypotheses, uems, collar=0.25)
    print(format_reports(collar0, collar025))
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps({"collar_0": collar0.per_file, "collar_0.25": collar025.per_file, "der": collar0.der}, indent=2)
        )
    return 0
