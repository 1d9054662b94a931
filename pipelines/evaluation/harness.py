"""`voiceflow evaluate --model M`: DER on the dev sets + speed, through the engine's own harness.

There is one harness (`voiceflow.evaluation`): this module only plugs a model into it and
shapes the result into a JSON-able report that manifests and the gate consume.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.evaluation.speed import speed_report

SETS = ("ami-dev", "sim-dev")


def load_sets(
    names: Sequence[str] = SETS, data_dir: Path | None = None, sim_count: int = 12
) -> dict[str, Any]:
    from voiceflow.evaluation import load_ami_dev, load_sim_dev

    loaders = {
        "ami-dev": lambda: load_ami_dev(data_dir),
        "sim-dev": lambda: load_sim_dev(data_dir, sim_count),
    }
    unknown = set(names) - set(loaders)
    if unknown:
        raise ValueError(f"unknown dev set(s): {', '.join(sorted(unknown))}; known: {', '.join(SETS)}")
    return {name: loaders[name]() for name in names}


def evaluate_model(
    model_path: Path | str,
    *,
    sets: dict[str, Any] | None = None,
    data_dir: Path | None = None,
    naive: bool = False,
    speed_seconds: float = 2.0,
) -> dict[str, Any]:
    """DER (collar 0 and 0.25, overlap scored) per dev set and ms per window for one ONNX model.

    The diarizer is the engine's default `Diarizer` with only the embedding model swapped, and it
    is not told the speaker count. `naive=True` adds the harness's naive floor with this model
    (true count given) for the side-by-side table.
    """
    from voiceflow.embedding import EmbeddingModel
    from voiceflow.evaluation import evaluate_sets, naive_baseline
    from voiceflow.pipeline import DiarizationConfig, Diarizer

    path = Path(model_path)
    model = EmbeddingModel.load(path)
    sets = sets if sets is not None else load_sets(data_dir=data_dir)
    diarizer = Diarizer(DiarizationConfig(), embedding_model=model)
    scores = evaluate_sets(sets, lambda audio, _count: diarizer.diarize(audio))
    report: dict[str, Any] = {
        "model": str(path),
        "sha256": model.sha256,
        "version": model.version,
        "der": {name: score.row() for name, score in scores.items()},
        "mean_der": mean_der({name: score.row() for name, score in scores.items()}),
        "scorer": "pyannote.metrics DiarizationErrorRate, overlap scored, collar 0 (der) and 0.25",
        "speed": speed_report(path, speed_seconds) if speed_seconds > 0 else {},
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }
    if naive:
        floor = evaluate_sets(sets, naive_baseline(model))
        report["naive_floor"] = {name: score.row() for name, score in floor.items()}
    return report


def mean_der(rows: dict[str, dict[str, float]]) -> float:
    """Unweighted mean over dev sets: each set (real meetings, simulated) counts equally."""
    return sum(r["der"] for r in rows.values()) / max(len(rows), 1)


def format_side_by_side(reports: dict[str, dict[str, Any]]) -> str:
    """A plain-text table: one row per (model, set), DER at both collars, then speed."""
    lines = [
        f"{'model':<30} {'set':<8} {'DER':>7} {'DER.25':>7} {'FA':>6} {'miss':>6} {'conf':>6} {'ms/win':>7}"
    ]
    for name, rep in reports.items():
        ms = rep.get("speed", {}).get("ms_per_window_b32")
        for set_name, row in rep["der"].items():
            lines.append(
                f"{name:<30} {set_name:<8} {100 * row['der']:6.2f}% {100 * row['der_collar_0.25']:6.2f}% "
                f"{100 * row['false_alarm']:5.1f}% {100 * row['missed']:5.1f}% "
                f"{100 * row['confusion']:5.1f}% "
                + (f"{ms:7.2f}" if ms is not None else f"{'-':>7}")
            )
    return "\n".join(lines)
