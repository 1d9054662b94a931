"""The development sets and the one evaluation harness every model and pipeline is scored with.

Dev sets: AMI dev00 + dev01 (real meetings, UEM-scored) and simulated conversations of held-out
LibriSpeech speakers (`pipelines.simulation`). Both are scored collar 0 with overlap (the published
convention) and with a 0.25 s collar.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from pipelines.paths import shared_data_dir
from pipelines.simulation import build_dev_conversations
from voiceflow import SAMPLE_RATE
from voiceflow.audio import load_audio
from voiceflow.clustering.offline import OfflineClusteringConfig, cluster_embeddings
from voiceflow.embedding import EmbeddingModel
from voiceflow.pipeline import WindowPlan, plan_windows
from voiceflow.rttm import read_rttm, read_uem
from voiceflow.scoring import DERReport, score_der
from voiceflow.segments import Segment, frames_to_segments
from voiceflow.vad import FRAME_SECONDS, SileroVAD, VADConfig, probabilities_to_mask

# (audio, true speaker count) -> segments. The count is only for oracle baselines.
DiarizeFn = Callable[[np.ndarray, int], list[Segment]]


@dataclass
class DevItem:
    uri: str
    audio: np.ndarray
    reference: list[Segment]
    uem: list[tuple[float, float]]
    # the window-grid phase this copy was read at (`shifted_item`); None for the recording as it is
    phase: str | None = None

    @property
    def num_speakers(self) -> int:
        return len({s.speaker for s in self.reference})


def load_ami_dev(data_dir: Path | None = None) -> list[DevItem]:
    return load_ami_split("development", data_dir)


def load_ami_split(
    split: str, data_dir: Path | None = None, uris: Sequence[str] | None = None, folder: str = "ami-excerpts"
) -> list[DevItem]:
    """The AMI excerpts of `split` ("development" or "train"), all of them or those named in `uris`."""
    ami = (data_dir or shared_data_dir()) / folder
    refs = read_rttm(ami / f"{split}.rttm")
    uems = read_uem(ami / f"{split}.uem")
    missing = sorted(set(uris or ()) - set(refs))
    if missing:
        raise ValueError(f"no AMI {split} excerpts named {', '.join(missing)} in {ami}")
    wanted = sorted(refs) if uris is None else sorted(set(uris))
    return [DevItem(uri, load_audio(ami / f"{uri}.wav"), refs[uri], uems[uri]) for uri in wanted]


def load_sim_dev(data_dir: Path | None = None, count: int = 12) -> list[DevItem]:
    convs = build_dev_conversations((data_dir or shared_data_dir()) / "librispeech-train-clean-100", count=count)
    return [DevItem(c.uri, c.audio, c.reference, [(0.0, len(c.audio) / SAMPLE_RATE)]) for c in convs]


def load_dev_sets(data_dir: Path | None = None) -> dict[str, list[DevItem]]:
    return {"ami-dev": load_ami_dev(data_dir), "sim-dev": load_sim_dev(data_dir)}


MAX_PHASES = 20


def shifted_item(item: DevItem, seconds: float) -> DevItem:
    """`item` with its first `seconds` cut off; reference and UEM move with the audio."""
    duration = len(item.audio) / SAMPLE_RATE
    if not (np.isfinite(seconds) and 0.0 <= seconds < duration):
        raise ValueError(f"a shift must be within [0, {duration:.2f}) s for {item.uri}, not {seconds}")
    reference = [
        Segment(max(0.0, s.start - seconds), s.end - seconds, s.speaker, s.final)
        for s in item.reference
        if s.end > seconds
    ]
    uem = [(max(0.0, a - seconds), b - seconds) for a, b in item.uem if b > seconds]
    phase = f"{round(seconds * 1000)}ms"
    # the uri stays unique within a set, since the scorer keys recordings by it
    return DevItem(f"{item.uri}@{phase}", item.audio[round(seconds * SAMPLE_RATE) :], reference, uem, phase)


def phase_offsets(phases: int, step_seconds: float) -> list[float]:
    """`phases` start offsets spread evenly over one window step (0 first)."""
    if isinstance(phases, bool) or not isinstance(phases, int) or not 1 <= phases <= MAX_PHASES:
        raise ValueError(f"phases must be an integer 1..{MAX_PHASES}, not {phases!r}")
    return [i * step_seconds / phases for i in range(phases)]


def at_phases(items: Sequence[DevItem], phases: int, step_seconds: float) -> list[DevItem]:
    """Every item read at `phases` positions of the window grid, as separate items of one set.

    Where the 0.2 s window grid falls on a recording decides which audio each window holds, and
    on a short meeting one merge decision at a knife edge turns on it: AMI dev's DER with the
    bundled GE2E moves between 28.7 % and 42.3 % when the audio starts 0-160 ms later
    (docs/pipelines.md). Pooling the phases scores the model, not the grid's luck.
    """
    offsets = phase_offsets(phases, step_seconds)
    if phases == 1:
        return list(items)
    return [shifted_item(item, offset) for item in items for offset in offsets]


@dataclass
class SetScore:
    name: str
    collar0: DERReport
    collar025: DERReport
    # DER (collar 0) of each window-grid phase on its own, when the set was read at several
    phase_der: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, float]:
        rates = self.collar0.component_rates()
        row = {
            "der": rates["der"],
            "der_collar_0.25": self.collar025.der,
            "false_alarm": rates["false_alarm"],
            "missed": rates["missed"],
            "confusion": rates["confusion"],
            "missed_overlap": rates["missed_overlap"],
        }
        if self.phase_der:
            row["der_phase_min"] = min(self.phase_der.values())
            row["der_phase_max"] = max(self.phase_der.values())
        return row


def score_items(name: str, items: Sequence[DevItem], diarize: DiarizeFn) -> SetScore:
    refs = {it.uri: it.reference for it in items}
    uems = {it.uri: it.uem for it in items}
    hyps = {it.uri: diarize(it.audio, it.num_speakers) for it in items}
    by_phase: dict[str, list[str]] = {}
    for it in items:
        if it.phase is not None:
            by_phase.setdefault(it.phase, []).append(it.uri)
    phase_der = {
        phase: score_der({u: refs[u] for u in uris}, hyps, {u: uems[u] for u in uris}).der
        for phase, uris in by_phase.items()
    }
    return SetScore(name, score_der(refs, hyps, uems, collar=0.0), score_der(refs, hyps, uems, collar=0.25), phase_der)


def evaluate_sets(sets: dict[str, list[DevItem]], diarize: DiarizeFn) -> dict[str, SetScore]:
    return {name: score_items(name, items, diarize) for name, items in sets.items()}


# The naive pipeline's windows: 1.6 s every 0.4 s, each labelling its central 0.4 s.
NAIVE_CONFIG_ARGS = {"window_seconds": 1.6, "step_seconds": 0.4, "min_window_speech": 0.5}
# Plain average linkage: no centring, no re-assignment, no small-cluster or merge rules.
NAIVE_CLUSTERING = OfflineClusteringConfig(
    center=False, reassign_iterations=0, min_cluster_fraction=0.0, merge_threshold=None
)


def naive_embeddings(
    model: EmbeddingModel, audio: np.ndarray, vad_factory: Callable[[], SileroVAD] = SileroVAD
) -> tuple[np.ndarray, WindowPlan, np.ndarray]:
    """(speech mask, window plan, window embeddings) of the naive pipeline: what every naive
    variant shares, so a threshold sweep embeds once."""
    from voiceflow.pipeline import DiarizationConfig, LazyWindows

    config = DiarizationConfig(**NAIVE_CONFIG_ARGS)  # type: ignore[arg-type]
    mask = probabilities_to_mask(vad_factory().probabilities(audio), VADConfig())
    plan = plan_windows(mask, config)
    if len(plan.starts) == 0:
        return mask, plan, np.zeros((0, 1), dtype=np.float32)
    return mask, plan, model.embed_batched(LazyWindows(audio, plan))


def naive_labels(embeddings: np.ndarray, num_speakers: int | None = None, threshold: float | None = None) -> np.ndarray:
    """Average linkage cut at the true count (`num_speakers`) or at a cosine distance (`threshold`)."""
    if (num_speakers is None) == (threshold is None):
        raise ValueError("give exactly one of num_speakers and threshold")
    if len(embeddings) == 0:
        return np.zeros(0, dtype=int)
    config = NAIVE_CLUSTERING if threshold is None else replace(NAIVE_CLUSTERING, threshold=threshold)
    return cluster_embeddings(embeddings, config, num_speakers=num_speakers)


def naive_segments(mask: np.ndarray, plan: WindowPlan, labels: np.ndarray) -> list[Segment]:
    """Each window labels its central step; speech outside any window centre takes the nearest."""
    if len(plan.starts) == 0:
        return []
    frame_labels = np.full(len(mask), -1)
    hop = round(float(NAIVE_CONFIG_ARGS["step_seconds"]) / FRAME_SECONDS)
    centre_offset = (plan.frames_per_window - hop) // 2
    for start, label in zip(plan.starts, labels, strict=True):
        frame_labels[start + centre_offset : start + centre_offset + hop] = label
    labelled = np.flatnonzero(frame_labels >= 0)
    for i in np.flatnonzero(mask & (frame_labels < 0)):
        frame_labels[i] = frame_labels[labelled[np.argmin(np.abs(labelled - i))]]
    return frames_to_segments(np.where(mask, frame_labels, -1), FRAME_SECONDS)


def naive_baseline(
    model: EmbeddingModel, threshold: float | None = None, vad_factory: Callable[[], SileroVAD] = SileroVAD
) -> DiarizeFn:
    """The floor to beat: VAD -> 1.6 s windows every 0.4 s -> average linkage given the TRUE count
    (or, with `threshold`, cut at that cosine distance: the naive pipeline with a tuned threshold),
    each window labelling its central 0.4 s."""

    def run(audio: np.ndarray, num_speakers: int) -> list[Segment]:
        mask, plan, emb = naive_embeddings(model, audio, vad_factory)
        labels = naive_labels(emb, None if threshold is not None else num_speakers, threshold)
        return naive_segments(mask, plan, labels)

    return run


def format_table(results: dict[str, dict[str, SetScore]]) -> str:
    """Rows: system x set; columns: DER (collar 0), DER (collar 0.25), FA, miss, confusion, and the
    part of miss that lies in overlapped speech (miss.ov, collar 0), all as shares of reference speech."""
    lines = [f"{'system':<34} {'set':<8} {'DER':>7} {'DER.25':>7} {'FA':>6} {'miss':>6} {'conf':>6} {'miss.ov':>7}"]
    for system, sets in results.items():
        for name, score in sets.items():
            r = score.row()
            lines.append(
                f"{system:<34} {name:<8} {100 * r['der']:6.2f}% {100 * r['der_collar_0.25']:6.2f}% "
                f"{100 * r['false_alarm']:5.1f}% {100 * r['missed']:5.1f}% {100 * r['confusion']:5.1f}% "
                f"{100 * r['missed_overlap']:6.1f}%"
            )
    return "\n".join(lines)
