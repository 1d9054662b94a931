"""Offline overlap-aware diarization of a whole recording (pyannote 3.x style).

audio -> sliding chunks (5 s every `step_seconds`) -> segmentation network (local speakers,
overlap included) -> one embedding per local speaker per chunk -> clustering of those
embeddings (automatic count) with the constraint that a chunk's local speakers stay distinct
-> overlap-add of the chunks' activity on global speakers + a per-frame speaker count ->
per-speaker tracks (overlapping where two speakers talk at once) -> segments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from voiceflow import SAMPLE_RATE
from voiceflow.clustering.constrained import UNASSIGNED, cluster_local_speakers
from voiceflow.clustering.labels import UNBOUNDED, SpeakerBounds
from voiceflow.clustering.offline import OfflineClusteringConfig
from voiceflow.diarizer import OfflineDiarizer, ProgressCallback
from voiceflow.embedding import EmbeddingModel
from voiceflow.segmentation.aggregation import (
    keep_top_speakers,
    overlap_add,
    smooth_tracks,
    speaker_count,
    tracks_to_segments,
)
from voiceflow.segmentation.local_embeddings import LocalEmbeddingConfig, embed_local_speakers
from voiceflow.segmentation.model import SegmentationModel
from voiceflow.segments import Segment
from voiceflow.vad import FRAME_SECONDS, SileroVAD, Speech, VADConfig, probabilities_to_mask
from voiceflow.validation import require_seconds

SPEECH_SOURCES = ("segmentation", "vad", "vad+confident", "confirmed")


@dataclass(frozen=True)
class SegmentationPipelineConfig:
    """Settings shared by the offline and streaming segmentation pipelines (chosen on the dev sets)."""

    step_seconds: float = 0.5  # chunk hop: each frame is seen by chunk/step chunks
    min_on_seconds: float = 0.0  # per-speaker runs shorter than this are dropped
    min_off_seconds: float = 0.3  # per-speaker pauses shorter than this are closed
    # "segmentation": the network alone says where speech is. "vad": Silero VAD says where speech
    # is and the network only who speaks there (speech it gives nobody goes to the nearest
    # speaker in time), for far-field audio where the network's own speech detection is weaker.
    # "vad+confident": the VAD's speech, plus the network's where it is sure (its P(speech),
    # overlap-added over chunks, >= `confident_speech`): the network's own detection alone adds
    # false alarm on read speech, the VAD alone misses quiet far-field speech.
    # "confirmed": the network's speech where the VAD agrees or the network is sure (nothing the
    # network gives nobody is added).
    # Dev suite (docs/evaluation.md, "Overlapped speech"): the network alone has the best pooled
    # DER; "vad+confident" (0.5, chosen on the other folds) loses less on the AMI dev meetings
    # (the network alone: 15 points behind the embedding pipeline there). Streaming has no VAD,
    # so the default keeps offline and streaming alike.
    speech: str = "segmentation"
    confident_speech: float = 0.5
    vad: VADConfig = field(default_factory=VADConfig)
    segmentation_batch_size: int = 16
    local: LocalEmbeddingConfig = field(default_factory=LocalEmbeddingConfig)
    # Local-speaker embeddings (up to 3 windows of one voice) are tighter than single windows:
    # they stop merging a little earlier than the embedding pipeline's 0.9 (research/scripts/tune_segmentation.py).
    clustering: OfflineClusteringConfig = field(default_factory=lambda: OfflineClusteringConfig(threshold=0.8))

    def __post_init__(self) -> None:
        if not 0.02 <= self.step_seconds <= 10.0:
            raise ValueError("step_seconds must be within 0.02..10")
        # NaN or inf failed every recording; a huge value dropped every run (or closed every pause).
        require_seconds(self, "min_on_seconds", "min_off_seconds")
        if self.segmentation_batch_size < 1:
            raise ValueError("segmentation_batch_size must be >= 1")
        if self.speech not in SPEECH_SOURCES:
            raise ValueError(f"speech must be one of {', '.join(SPEECH_SOURCES)}, not {self.speech!r}")
        if not 0.0 <= self.confident_speech <= 1.0:
            raise ValueError("confident_speech must be a probability in 0..1")


def chunk_starts(num_samples: int, chunk_samples: int, step_samples: int) -> np.ndarray:
    """Start samples of chunks covering [0, num_samples): a regular grid, the last one flush with the end."""
    if num_samples <= chunk_samples:
        return np.zeros(1, dtype=int)
    starts = np.arange(0, num_samples - chunk_samples + 1, step_samples)
    if starts[-1] + chunk_samples < num_samples:
        starts = np.append(starts, num_samples - chunk_samples)
    return starts.astype(int)


@dataclass(frozen=True)
class LocalSpeakers:
    """The expensive part of a recording's analysis: chunks, their local speakers and embeddings."""

    start_frames: np.ndarray  # [C] first frame of each chunk
    hard: np.ndarray  # [C, F, S] local activity
    embeddings: np.ndarray  # [C, S, D]
    valid: np.ndarray  # [C, S] which local speakers have an embedding
    total_frames: int
    frame_seconds: float
    speech: np.ndarray | None = None  # [total_frames] VAD speech mask when the config asks for one
    # [total_frames] the network's P(anyone talks) and P(two or more talk), overlap-added over chunks
    speech_probability: np.ndarray | None = None
    overlap_probability: np.ndarray | None = None


def chunk_windows(
    audio: np.ndarray, segmentation: SegmentationModel, step_seconds: float, batch: int = 16
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(chunk start samples [b], chunks [b, T]) batch after batch over the whole recording, chunks
    `step_seconds` apart. Only one batch of chunk audio exists at a time: an hour at a 0.5 s hop is
    7200 chunks, 2.3 GB if materialised together."""
    frame = segmentation.frame_samples
    total_frames = len(audio) // frame
    if total_frames < 4:
        return
    step = max(frame, round(step_seconds * SAMPLE_RATE / frame) * frame)
    length = min(segmentation.chunk_samples, total_frames * frame)
    starts = chunk_starts(total_frames * frame, length, step)
    for i in range(0, len(starts), batch):
        yield starts[i : i + batch], np.stack([audio[s : s + length] for s in starts[i : i + batch]])


def sliding_activity(
    audio: np.ndarray,
    segmentation: SegmentationModel,
    step_seconds: float,
    batch: int = 16,
    run: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(chunk start samples [C], hard local activity [C, F, S]) over the whole recording, or `run`'s
    output per chunk instead (the overlap detector's counts); None when the audio is shorter than
    4 frames."""
    per_chunk = run or (lambda chunks: segmentation.activity(chunks).hard)
    parts = [(starts, per_chunk(chunks)) for starts, chunks in chunk_windows(audio, segmentation, step_seconds, batch)]
    if not parts:
        return None
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class SegmentationDiarizer(OfflineDiarizer):
    """The offline segmentation pipeline (its call shape: voiceflow.diarizer)."""

    def __init__(
        self,
        config: SegmentationPipelineConfig | None = None,
        embedding_model: EmbeddingModel | None = None,
        segmentation_model: SegmentationModel | None = None,
    ) -> None:
        self.config = config or SegmentationPipelineConfig()
        self.embedding_model = embedding_model or EmbeddingModel.load()
        self.segmentation_model = segmentation_model or SegmentationModel.load()

    def diarize_16k(
        self, audio: np.ndarray, bounds: SpeakerBounds, progress: ProgressCallback | None, speech: Speech | None
    ) -> list[Segment]:
        if speech is not None:  # its speech comes from the network, or from a VAD with its own settings
            raise ValueError("the segmentation pipeline takes no precomputed speech mask")
        local = self.analyse(np.asarray(audio, dtype=np.float32).reshape(-1), progress)
        if local is None:
            return []
        return assemble(local, self.config, bounds)

    def analyse(self, audio: np.ndarray, progress: ProgressCallback | None = None) -> LocalSpeakers | None:
        """Segmentation of every chunk and one embedding per local speaker (None: audio too short)."""
        seg = self.segmentation_model
        frame = seg.frame_samples
        starts, hard, embeddings, valid = [], [], [], []
        speech_p: list[np.ndarray] = []  # per chunk [F, 1], for overlap_add
        overlap_p: list[np.ndarray] = []
        dimension = self.embedding_model.dimension
        for batch_starts, chunks in chunk_windows(
            audio, seg, self.config.step_seconds, self.config.segmentation_batch_size
        ):
            activity = seg.activity(chunks)
            batch_hard = activity.hard
            speech_p.extend(activity.speech_probability()[..., None])
            overlap_p.extend(activity.overlap_probability()[..., None])
            batch_embeddings, batch_valid = embed_local_speakers(
                list(chunks), list(batch_hard), self.embedding_model.embed, frame, self.config.local, dimension
            )
            starts.append(batch_starts)
            hard.append(batch_hard)
            embeddings.append(batch_embeddings)
            valid.append(batch_valid)
            if progress is not None:
                progress(int(batch_starts[-1]) + 1, len(audio))
        if not starts:
            return None
        total_frames = len(audio) // frame
        speech = None
        if self.config.speech != "segmentation":
            mask = probabilities_to_mask(SileroVAD().probabilities(audio), self.config.vad)
            speech = resample_mask(mask, FRAME_SECONDS, total_frames, frame / SAMPLE_RATE)
        start_frames = np.concatenate(starts) // frame
        return LocalSpeakers(
            start_frames,
            np.concatenate(hard),
            np.concatenate(embeddings),
            np.concatenate(valid),
            total_frames,
            frame / SAMPLE_RATE,
            speech,
            overlap_add(speech_p, list(start_frames), total_frames)[:, 0],
            overlap_add(overlap_p, list(start_frames), total_frames)[:, 0],
        )


def assemble(
    local: LocalSpeakers, config: SegmentationPipelineConfig, bounds: SpeakerBounds = UNBOUNDED
) -> list[Segment]:
    """Cluster the local speakers and rebuild per-speaker tracks (pure: cheap to rerun with other settings)."""
    labels = cluster_local_speakers(
        local.embeddings, local.valid, config.clustering, bounds.num, bounds.min, bounds.max
    )
    active = reconstruct(local.hard, labels, local.start_frames, local.total_frames)
    speech = speech_frames(local, config, np.asarray(active.any(axis=1)))
    if speech is not None:
        active = gate_with_speech(active, speech)
    active = smooth_tracks(
        active,
        round(config.min_on_seconds / local.frame_seconds),
        round(config.min_off_seconds / local.frame_seconds),
    )
    return tracks_to_segments(active, local.frame_seconds)


def speech_frames(
    local: LocalSpeakers, config: SegmentationPipelineConfig, network_speech: np.ndarray | None = None
) -> np.ndarray | None:
    """[total_frames] where speech is, when the config does not leave that to the network alone
    (`network_speech`: the frames the reconstruction gives anyone)."""
    if config.speech == "segmentation" or local.speech is None:
        return None
    if config.speech in ("vad+confident", "confirmed") and local.speech_probability is not None:
        sure = local.speech | (local.speech_probability >= config.confident_speech)
        return sure & network_speech if config.speech == "confirmed" and network_speech is not None else sure
    return local.speech


def resample_mask(mask: np.ndarray, mask_seconds: float, frames: int, frame_seconds: float) -> np.ndarray:
    """[frames] bool: `mask` (one value per `mask_seconds`) read at the centre of each frame."""
    index = ((np.arange(frames) + 0.5) * frame_seconds / mask_seconds).astype(int)
    return np.asarray(mask, dtype=bool)[np.minimum(index, len(mask) - 1)] if len(mask) else np.zeros(frames, bool)


def gate_with_speech(active: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """Speakers only where `speech`; speech frames nobody holds take the nearest held frame's speakers."""
    gated = active & speech[:, None]
    held = np.flatnonzero(gated.any(axis=1))
    orphans = np.flatnonzero(speech & ~gated.any(axis=1))
    if held.size and orphans.size:
        position = np.searchsorted(held, orphans)
        after = held[np.clip(position, 0, held.size - 1)]
        before = held[np.clip(position - 1, 0, held.size - 1)]
        nearest = np.where(np.abs(before - orphans) <= np.abs(after - orphans), before, after)
        gated[orphans] = gated[nearest]
    return gated


def global_activity(hard: np.ndarray, labels: np.ndarray, num_global: int) -> np.ndarray:
    """[F, num_global] activity of one chunk on global speakers (local speakers UNASSIGNED dropped)."""
    out = np.zeros((hard.shape[0], num_global), dtype=np.float64)
    for s, k in enumerate(labels):
        if k != UNASSIGNED:
            out[:, k] = np.maximum(out[:, k], hard[:, s])
    return out


def reconstruct(hard: np.ndarray, labels: np.ndarray, start_frames: np.ndarray, total_frames: int) -> np.ndarray:
    """[total_frames, K] bool tracks from chunks' hard activity [C, F, S] and their labels [C, S]."""
    num_global = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    if num_global == 0:
        return np.zeros((total_frames, 0), dtype=bool)
    scores = overlap_add(
        [global_activity(h, lab, num_global) for h, lab in zip(hard, labels, strict=True)],
        list(start_frames),
        total_frames,
    )
    count = speaker_count(list(hard), list(start_frames), total_frames)
    return keep_top_speakers(scores, count)
