"""Offline diarization of a whole recording: VAD -> window embeddings -> clustering -> frames.

Frames are the VAD's 32 ms frames. Every speech frame takes the speaker whose windows cover it
with the most weight (a Hann taper, so a window speaks loudest about its own centre), which turns
overlapping 1.6 s windows into turn boundaries sharper than one window.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from voiceflow import SAMPLE_RATE
from voiceflow.clustering.labels import SpeakerBounds
from voiceflow.clustering.offline import (
    AUTO,
    OfflineClusteringConfig,
    cluster_embeddings,
    needs_plda,
    shift_merge_threshold,
)
from voiceflow.clustering.plda import model_plda, optional_model_plda
from voiceflow.diarizer import OfflineDiarizer, ProgressCallback
from voiceflow.embedding import EmbeddingModel
from voiceflow.pauses import PauseRules
from voiceflow.segmentation.model import SegmentationModel
from voiceflow.segmentation.overlap import OverlapConfig, overlap_frames, second_speakers
from voiceflow.segments import (
    Segment,
    bridge_own_pauses,
    frames_to_segments,
    merge_per_speaker,
    silence_between_speakers,
    speaker_label,
)
from voiceflow.vad import CHUNK as VAD_CHUNK
from voiceflow.vad import (
    FRAME_SECONDS,
    SileroVAD,
    Speech,
    VADConfig,
    recording_probabilities,
    speech_frames,
)
from voiceflow.validation import require_seconds, require_windows


@dataclass(frozen=True)
class DiarizationConfig:
    window_seconds: float = 1.6
    step_seconds: float = 0.2
    min_window_speech: float = 0.5  # fraction of a window that must be speech for it to be embedded
    min_turn_seconds: float = 0.3  # shorter speaker runs inside speech are absorbed by their neighbour
    embed_batch_size: int = 32
    vad: VADConfig = field(default_factory=VADConfig)
    pauses: PauseRules = field(default_factory=PauseRules)  # applied once the speakers are known
    clustering: OfflineClusteringConfig = field(default_factory=OfflineClusteringConfig)

    def __post_init__(self) -> None:
        require_windows(self.window_seconds, self.step_seconds, self.min_window_speech, min_step_seconds=0.05)
        # NaN or inf failed every recording; a huge value absorbed every turn between pauses.
        require_seconds(self, "min_turn_seconds")
        if self.embed_batch_size < 1:
            raise ValueError("embed_batch_size must be >= 1")

    def with_overrides(self, **changes: object) -> DiarizationConfig:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class WindowPlan:
    """Where windows go (in VAD frames) and the frames each window covers."""

    starts: np.ndarray  # first frame of each window
    frames_per_window: int


@dataclass(frozen=True)
class FrameAnalysis:
    """What the offline embedding pipeline decided on one recording, per VAD frame (-1: nobody)."""

    speech: Speech
    plan: WindowPlan
    embeddings: np.ndarray  # one row per planned window
    window_labels: np.ndarray  # each window's cluster
    votes: np.ndarray  # [frames, speakers]: how many windows over each frame voted for each speaker
    turns: np.ndarray  # each frame's speaker, short turns absorbed
    # the turns with the pauses between two speakers given back as silence, a speaker's own as speech
    frame_labels: np.ndarray


def plan_windows(mask: np.ndarray, config: DiarizationConfig) -> WindowPlan:
    """Regular windows with enough speech, plus one centred on any speech a regular one missed."""
    n = len(mask)
    width = max(1, round(config.window_seconds / FRAME_SECONDS))
    hop = max(1, round(config.step_seconds / FRAME_SECONDS))
    if n == 0 or not mask.any():
        return WindowPlan(np.zeros(0, dtype=int), width)
    last_start = max(0, n - width)
    grid = np.arange(0, last_start + 1, hop)
    if grid[-1] != last_start:
        grid = np.append(grid, last_start)
    speech_cumsum = np.concatenate([[0], np.cumsum(mask)])
    speech_in = speech_cumsum[np.minimum(grid + width, n)] - speech_cumsum[grid]
    kept = grid[speech_in >= config.min_window_speech * min(width, n)]
    covered = np.zeros(n, dtype=bool)
    for s in kept:
        covered[s : s + width] = True
    extra = []
    orphan = mask & ~covered
    if orphan.any():
        idx = np.flatnonzero(orphan)
        breaks = np.flatnonzero(np.diff(idx) > 1)
        for run in np.split(idx, breaks + 1):
            centre = int((run[0] + run[-1]) // 2)
            extra.append(int(np.clip(centre - width // 2, 0, last_start)))
    starts = np.unique(np.concatenate([kept, np.array(extra, dtype=int)])).astype(int)
    return WindowPlan(starts, width)


def window_length(plan: WindowPlan) -> int:
    """Samples in one of the plan's windows."""
    return plan.frames_per_window * round(FRAME_SECONDS * SAMPLE_RATE)


def pad_to_window(audio: np.ndarray, length: int) -> np.ndarray:
    """Audio shorter than one window, zero-padded to one window; longer audio unchanged."""
    return audio if len(audio) >= length else np.pad(audio, (0, length - len(audio)))


def window_ends(n_samples: int, plan: WindowPlan) -> np.ndarray:
    """Where each planned window ends, in samples of the audio padded to at least one window;
    a window that would run past the end is moved back to end there."""
    frame_samples = round(FRAME_SECONDS * SAMPLE_RATE)
    length = window_length(plan)
    last_start = max(n_samples, length) - length
    return np.minimum(plan.starts.astype(np.int64) * frame_samples, last_start) + length


def window_samples(audio: np.ndarray, plan: WindowPlan) -> np.ndarray:
    length = window_length(plan)
    padded = pad_to_window(audio, length)
    out = np.empty((len(plan.starts), length), dtype=np.float32)
    for i, end in enumerate(window_ends(len(audio), plan)):
        out[i] = padded[end - length : end]
    return out


def window_votes(n: int, plan: WindowPlan, labels: np.ndarray, num_clusters: int) -> np.ndarray:
    """[n, K] Hann-weighted votes of the windows covering each frame, per speaker."""
    votes = np.zeros((n, max(num_clusters, 1)))
    taper = np.hanning(plan.frames_per_window + 2)[1:-1]
    for start, label in zip(plan.starts, labels, strict=True):
        end = min(start + plan.frames_per_window, n)
        votes[start:end, label] += taper[: end - start]
    return votes


class LazyWindows:
    """The windows of a plan, cut from the audio only when a batch asks for them: a one-hour
    meeting has ~18000 windows, 1.8 GB as one array, while a batch of 32 is 3 MB."""

    def __init__(self, audio: np.ndarray, plan: WindowPlan) -> None:
        self.audio = audio
        self.plan = plan

    def __len__(self) -> int:
        return len(self.plan.starts)

    def __getitem__(self, part: slice) -> np.ndarray:
        return window_samples(self.audio, WindowPlan(self.plan.starts[part], self.plan.frames_per_window))


def labels_from_votes(mask: np.ndarray, votes: np.ndarray) -> np.ndarray:
    """Each speech frame's best-voted speaker (-1 for non-speech); speech no window reached takes
    the nearest labelled frame's."""
    frame_labels = np.where(votes.any(axis=1), votes.argmax(axis=1), -1)
    if (frame_labels[mask] < 0).any():
        # Speech no window reached (possible at the very edges): nearest labelled frame.
        labelled = np.flatnonzero(frame_labels >= 0)
        if labelled.size:
            for i in np.flatnonzero(mask & (frame_labels < 0)):
                frame_labels[i] = frame_labels[labelled[np.argmin(np.abs(labelled - i))]]
    return np.where(mask, frame_labels, -1)


def absorb_short_turns(frame_labels: np.ndarray, min_frames: int) -> np.ndarray:
    """Speaker runs shorter than `min_frames` between two speech runs take the longer neighbour's label."""
    out = frame_labels.copy()
    if min_frames <= 1 or out.size == 0:
        return out
    change = np.flatnonzero(np.diff(out)) + 1
    bounds = np.concatenate([[0], change, [out.size]])
    runs = [(int(s), int(e), int(out[s])) for s, e in itertools.pairwise(bounds)]
    for k, (s, e, label) in enumerate(runs):
        if label < 0 or e - s >= min_frames:
            continue
        prev = runs[k - 1] if k > 0 and runs[k - 1][2] >= 0 else None
        nxt = runs[k + 1] if k + 1 < len(runs) and runs[k + 1][2] >= 0 else None
        candidates = [r for r in (prev, nxt) if r is not None]
        if candidates:
            best = max(candidates, key=lambda r: r[1] - r[0])
            out[s:e] = best[2]
            runs[k] = (s, e, best[2])
    return out


def embed_plan(
    model: EmbeddingModel,
    audio: np.ndarray,
    plan: WindowPlan,
    batch_size: int = 32,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """The plan's window embeddings: cut window by window, or read off staggered segments when the
    model was exported for that (voiceflow.staggered)."""
    if not model.streams:
        return model.embed_batched(LazyWindows(audio, plan), batch_size, progress)
    length = window_length(plan)
    padded = pad_to_window(audio, length)
    ends = window_ends(len(audio), plan)
    return model.read_windows(padded, ends, length, batch_size, progress)


class Diarizer(OfflineDiarizer):
    """The offline embedding pipeline; also the factory of streaming sessions with the same models."""

    def __init__(
        self,
        config: DiarizationConfig | None = None,
        embedding_model: EmbeddingModel | None = None,
        vad_factory: Callable[[], SileroVAD] = SileroVAD,
        overlap_model: SegmentationModel | None = None,
        overlap_config: OverlapConfig | None = None,
    ) -> None:
        self.config = config or DiarizationConfig()
        self.embedding_model = embedding_model or EmbeddingModel.load()
        self.vad_factory = vad_factory
        # The segmentation network as an overlap detector: a second speaker where it hears two.
        self.overlap_model = overlap_model
        self.overlap_config = overlap_config or OverlapConfig()
        # A method that needs the model's PLDA fails here, at start-up, not on the first request.
        algorithm = self.config.clustering.algorithm
        self.plda = (
            model_plda(self.embedding_model)
            if needs_plda(algorithm)
            else optional_model_plda(self.embedding_model)
            if algorithm == AUTO
            else None
        )

    def speech(self, audio: np.ndarray) -> Speech:
        return speech_frames(self.vad_factory().probabilities(audio), self.config.vad)

    def speech_per_recording(self, recordings: Sequence[np.ndarray]) -> list[Speech]:
        """`speech` of each 16 kHz recording. The bundled VAD reads them all in one model run (the
        same probabilities each gets alone: a batch run's files); any other VAD factory (a cache, a
        stand-in) is asked one recording at a time."""
        if self.vad_factory is not SileroVAD:
            return [self.speech(audio) for audio in recordings]
        probabilities = recording_probabilities(SileroVAD.shared_model(), recordings)
        return [speech_frames(p, self.config.vad) for p in probabilities]

    def analyse(
        self, audio: np.ndarray, bounds: SpeakerBounds, progress: ProgressCallback | None, speech: Speech | None
    ) -> FrameAnalysis | None:
        """The pipeline's decisions on 16 kHz audio, frame by frame (None: no window to embed); what
        `diarize_16k` turns into segments."""
        if speech is not None and not len(speech.mask) == len(speech.heard) == len(audio) // VAD_CHUNK:
            raise ValueError(f"speech mask has {len(speech.mask)} frames, the audio {len(audio) // VAD_CHUNK}")
        speech = self.speech(audio) if speech is None else speech
        plan = plan_windows(speech.mask, self.config)
        if len(plan.starts) == 0:
            return None
        embeddings = embed_plan(self.embedding_model, audio, plan, self.config.embed_batch_size, progress)
        clustering = shift_merge_threshold(self.config.clustering, self.embedding_model.merge_threshold_shift)
        labels = cluster_embeddings(embeddings, clustering, bounds.num, bounds.min, bounds.max, self.plda)
        # The votes serve twice: each frame's speaker, and the runner-up where two talk at once.
        votes = window_votes(len(speech.mask), plan, labels, int(labels.max()) + 1)
        turns = labels_from_votes(speech.mask, votes)
        turns = absorb_short_turns(turns, round(self.config.min_turn_seconds / FRAME_SECONDS))
        pauses = self.config.pauses
        frame_labels = silence_between_speakers(turns, speech.heard, pauses.reach_frames(FRAME_SECONDS))
        frame_labels = bridge_own_pauses(frame_labels, pauses.own_pause_frames(FRAME_SECONDS))
        return FrameAnalysis(speech, plan, embeddings, labels, votes, turns, frame_labels)

    def diarize_16k(
        self, audio: np.ndarray, bounds: SpeakerBounds, progress: ProgressCallback | None, speech: Speech | None
    ) -> list[Segment]:
        analysis = self.analyse(audio, bounds, progress, speech)
        if analysis is None:
            return []
        segments = frames_to_segments(analysis.frame_labels, FRAME_SECONDS)
        if self.overlap_model is None:
            return segments
        frames = len(analysis.frame_labels)
        overlap = overlap_frames(audio, self.overlap_model, frames, FRAME_SECONDS, self.overlap_config)
        reach = round(self.overlap_config.max_reach_seconds / FRAME_SECONDS)
        second = second_speakers(analysis.frame_labels, analysis.votes, overlap, reach)
        return merge_per_speaker(segments + frames_to_segments(second, FRAME_SECONDS))


__all__ = ["DiarizationConfig", "Diarizer", "FrameAnalysis", "speaker_label"]
