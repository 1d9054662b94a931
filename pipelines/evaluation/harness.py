"""`voiceflow evaluate --model M`: DER on the dev sets + speed, through the engine's own harness.

There is one harness (`pipelines.evaluation.devsets`): this module only plugs a model into it and
shapes the result into a JSON-able report that manifests and the gate consume.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.evaluation.machine import cpu
from pipelines.evaluation.speed import speed_report

SETS = ("ami-dev", "sim-dev")
# The ten AMI train excerpts, scored as a held-out set for a model that never heard them: five
# times AMI dev's audio, and the engine's settings were chosen on the dev sets only. Not one of
# the gate's defaults, because a model trained on any of them must not be scored there
# (`heard_set_recordings`).
AMI_TRAIN_SET = "ami-train"
KNOWN_SETS = (*SETS, AMI_TRAIN_SET)


def load_sets(names: Sequence[str] = SETS, data_dir: Path | None = None, sim_count: int = 12) -> dict[str, Any]:
    from pipelines.evaluation.devsets import load_ami_dev, load_ami_split, load_sim_dev

    loaders = {
        "ami-dev": lambda: load_ami_dev(data_dir),
        "sim-dev": lambda: load_sim_dev(data_dir, sim_count),
        AMI_TRAIN_SET: lambda: load_ami_split("train", data_dir),
    }
    unknown = set(names) - set(loaders)
    if unknown:
        raise ValueError(f"unknown dev set(s): {', '.join(sorted(unknown))}; known: {', '.join(KNOWN_SETS)}")
    return {name: loaders[name]() for name in names}


def heard_set_recordings(model_metadata: dict[str, Any], set_names: Sequence[str]) -> list[str]:
    """The recordings of `set_names` that the model's training config says it trained on.

    Only `ami-train` can hold them (the dev sets are never training data). A model's calibration
    meetings are not counted: the calibration reads one scalar off them, and
    `voiceflow export --no-calibrate` leaves even that out.
    """
    from pipelines.training.config import DataConfig, build_config

    training = model_metadata.get("training")
    if AMI_TRAIN_SET not in set_names or not isinstance(training, dict):
        return []  # the bundled GE2E (no training record) never heard AMI
    config = training.get("config") or {}
    data = (config.get("data") or {}) if isinstance(config, dict) else None
    if not isinstance(data, dict):
        raise ValueError("the model's training record has no readable config.data: cannot tell what it heard")
    # fields a config left out take the defaults it was trained with (all ten excerpts)
    heard = build_config(DataConfig, data, "data").ami_files
    if not isinstance(heard, list) or not all(isinstance(name, str) for name in heard):
        raise ValueError(f"the model's training record has data.ami_files {heard!r}, not a list of excerpt names")
    return sorted(heard)


def load_folder_set(folder: Path) -> dict[str, Any]:
    """A dev set on disk (e.g. what `voiceflow simulate --out-dir` writes): audio + RTTM references.

    References come from any *.rttm in the folder (keyed by uri = audio file stem); an optional
    *.uem limits scoring, else the whole file is scored.
    """
    from pipelines.evaluation.devsets import DevItem
    from voiceflow.audio import load_audio
    from voiceflow.rttm import read_rttm, read_uem

    refs: dict[str, Any] = {}
    for rttm in sorted(folder.glob("*.rttm")):
        refs.update(read_rttm(rttm))
    uems: dict[str, Any] = {}
    for uem in sorted(folder.glob("*.uem")):
        uems.update(read_uem(uem))
    items = []
    for audio_path in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".wav", ".flac")):
        if audio_path.stem not in refs:
            continue
        audio = load_audio(audio_path)
        uem = uems.get(audio_path.stem, [(0.0, len(audio) / 16000.0)])
        items.append(DevItem(audio_path.stem, audio, refs[audio_path.stem], uem))
    if not items:
        raise ValueError(f"{folder}: no audio file with an RTTM reference")
    return {folder.name or "data": items}


def load_sets_from_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Load the dev sets a report names in its "sets_spec" (so a baseline sees the same audio).

    `"phases": N` reads every recording at N positions of the engine's window grid
    (`pipelines.evaluation.devsets.at_phases`); absent, once, as before.
    """
    from pipelines.evaluation.devsets import at_phases
    from voiceflow.pipeline import DiarizationConfig

    if spec.get("suite"):  # the dev suite: its own items (phases apply to its AMI excerpts)
        from pipelines.evaluation.suite.command import load_items

        return {"suite": load_items(spec)}
    if spec.get("folder"):
        sets = load_folder_set(Path(spec["folder"]))
    else:
        data_dir = Path(spec["data_dir"]) if spec.get("data_dir") else None
        sets = load_sets(spec.get("names", SETS), data_dir=data_dir)
    phases = spec.get("phases", 1)
    step = DiarizationConfig().step_seconds
    return {name: at_phases(items, phases, step) for name, items in sets.items()}


def evaluate_model(
    model_path: Path | str,
    *,
    sets: dict[str, Any] | None = None,
    sets_spec: dict[str, Any] | None = None,
    naive: bool = False,
    speed_seconds: float = 2.0,
    diarization_config: Any = None,
) -> dict[str, Any]:
    """DER (collar 0 and 0.25, overlap scored) per dev set and ms per window for one ONNX model.

    The diarizer is the engine's default `Diarizer` with only the embedding model swapped, and it
    is not told the speaker count. `naive=True` adds the harness's naive floor with this model
    (true count given) for the side-by-side table. `sets` (already loaded) wins over `sets_spec`
    ({"names": [...], "data_dir": ...} or {"folder": ...}); the spec is recorded in the report.
    """
    from pipelines.evaluation.devsets import evaluate_sets, naive_baseline
    from voiceflow.embedding import EmbeddingModel
    from voiceflow.pipeline import DiarizationConfig, Diarizer

    path = Path(model_path)
    spec = sets_spec or {"names": list(SETS), "data_dir": None}
    if spec.get("suite"):  # the dev suite: per-stratum rows and per-recording counts for the gate
        from pipelines.evaluation.suite.command import model_report

        return model_report(path, (sets or {}).get("suite"), spec, speed_seconds)
    model = EmbeddingModel.load(path)
    sets = sets if sets is not None else load_sets_from_spec(spec)
    # The engine's defaults unless a study passes its own (e.g. clustering settings for a model
    # whose similarity scale differs from GE2E's, the scale the defaults were tuned on).
    diarizer = Diarizer(diarization_config or DiarizationConfig(), embedding_model=model)
    scores = evaluate_sets(sets, lambda audio, _count: diarizer.diarize(audio))
    rows = {name: score.row() for name, score in scores.items()}
    report: dict[str, Any] = {
        "model": str(path),
        "sha256": model.sha256,
        "version": model.version,
        "der": rows,
        "mean_der": mean_der(rows),
        "scorer": "pyannote.metrics DiarizationErrorRate, overlap scored, collar 0 (der) and 0.25",
        "speed": speed_report(path, speed_seconds) if speed_seconds > 0 else {},
        "machine": cpu(),  # DER and speed move with the CPU (pipelines/evaluation/machine.py)
        "sets_spec": spec,  # how to load the same sets again (register's baseline)
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
    # suite strata ("speakers:5-6", "channel:telephone") are longer than the dev sets' names
    width = max([8] + [len(name) for rep in reports.values() for name in rep["der"]])
    header = f"{'model':<30} {'set':<{width}} {'DER':>7} {'DER.25':>7} {'FA':>6} {'miss':>6} {'conf':>6} {'ms/win':>7}"
    lines = [header]
    for name, rep in reports.items():
        ms = rep.get("speed", {}).get("ms_per_window_b32")
        for set_name, row in rep["der"].items():
            lines.append(
                f"{name:<30} {set_name:<{width}} {100 * row['der']:6.2f}% {100 * row['der_collar_0.25']:6.2f}% "
                f"{100 * row['false_alarm']:5.1f}% {100 * row['missed']:5.1f}% "
                f"{100 * row['confusion']:5.1f}% "
                + (f"{ms:7.2f}" if ms is not None else f"{'-':>7}")
                + (
                    f"  phases {100 * row['der_phase_min']:.2f}-{100 * row['der_phase_max']:.2f}%"
                    if "der_phase_min" in row
                    else ""
                )
            )
    return "\n".join(lines)
