"""One embedding per local speaker of a chunk, from the audio where that speaker talks.

The embedding network takes audio, not frame weights, so "weighting frames" means choosing
samples: a local speaker's embedding is computed on the concatenation of the frames where it is
the *only* active speaker (overlapped frames carry someone else's voice too and would pull the
embedding between the two). When a speaker talks almost only in overlap, its overlapped frames
are used rather than nothing. The audio is cut into the embedding model's own window length
(1.6 s for GE2E): a short stretch is tiled up to one window, a long one gives up to
`max_windows` evenly spaced windows whose embeddings are averaged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from voiceflow import SAMPLE_RATE
from voiceflow.embedding import l2_normalize

EmbedFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class LocalEmbeddingConfig:
    window_seconds: float = 1.6  # the embedding model's training window
    min_speech_seconds: float = 0.4  # less than this is no voice print: the local speaker gets none
    max_windows: int = 3  # per local speaker and chunk: caps the embedding cost of long chunks
    batch_size: int = 32

    def __post_init__(self) -> None:
        if not 0.5 <= self.window_seconds <= 10.0:
            raise ValueError("window_seconds must be within 0.5..10")
        # NaN or more speech than any chunk holds: no local speaker ever gets an embedding.
        if not 0.05 <= self.min_speech_seconds <= 10.0:
            raise ValueError("min_speech_seconds must be within 0.05..10 seconds")
        if self.max_windows < 1 or self.batch_size < 1:
            raise ValueError("max_windows >= 1 and batch_size >= 1 are required")

    @property
    def window_samples(self) -> int:
        return round(self.window_seconds * SAMPLE_RATE)

    @property
    def min_samples(self) -> int:
        return round(self.min_speech_seconds * SAMPLE_RATE)


def speaker_audio(
    chunk: np.ndarray, hard: np.ndarray, speaker: int, frame_samples: int, min_samples: int
) -> np.ndarray:
    """The samples of `chunk` where `speaker` talks alone (or, failing enough of those, at all).

    Returns an empty array when the speaker has less than `min_samples` of speech either way.
    """
    active = hard[:, speaker].astype(bool)
    alone = active & (hard.sum(axis=1) == 1)
    for frames in (alone, active):
        if frames.sum() * frame_samples >= min_samples:
            mask = np.repeat(frames, frame_samples)[: len(chunk)]
            return chunk[: len(mask)][mask]
    return np.zeros(0, dtype=np.float32)


def embedding_windows(audio: np.ndarray, window_samples: int, max_windows: int) -> np.ndarray:
    """[k, window_samples]: `audio` tiled up to one window, or up to `max_windows` spread over it."""
    if len(audio) <= window_samples:
        reps = int(np.ceil(window_samples / max(len(audio), 1)))
        return np.tile(audio, reps)[None, :window_samples].astype(np.float32)
    # Half-overlapping windows as resemblyzer's embed_utterance, but at most max_windows of them.
    count = min(max_windows, 1 + int(np.ceil((len(audio) - window_samples) / (window_samples // 2))))
    starts = np.linspace(0, len(audio) - window_samples, count).round().astype(int)
    return np.stack([audio[s : s + window_samples] for s in starts]).astype(np.float32)


def embed_local_speakers(
    chunks: Sequence[np.ndarray],
    hard: Sequence[np.ndarray],
    embed: EmbedFn,
    frame_samples: int,
    config: LocalEmbeddingConfig = LocalEmbeddingConfig(),
    dimension: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings [C, S, D] L2-normalised, valid [C, S] bool) for every chunk's local speakers.

    All windows of all chunks go through `embed` together in batches (one call per batch, so a
    server's cross-session batcher sees full batches). Invalid slots hold zeros. `dimension` is
    the embeddings' width when no chunk has a speaker to embed (nothing then says it).
    """
    owners: list[tuple[int, int]] = []
    windows: list[np.ndarray] = []
    speakers = hard[0].shape[1] if len(hard) else 0
    for c, (chunk, activity) in enumerate(zip(chunks, hard, strict=True)):
        for s in range(speakers):
            audio = speaker_audio(chunk, activity, s, frame_samples, config.min_samples)
            if audio.size:
                for window in embedding_windows(audio, config.window_samples, config.max_windows):
                    owners.append((c, s))
                    windows.append(window)
    if not windows:
        empty = np.zeros((len(chunks), speakers, dimension), dtype=np.float32)
        return empty, np.zeros((len(chunks), speakers), dtype=bool)
    stacked = np.stack(windows)
    parts = [embed(stacked[i : i + config.batch_size]) for i in range(0, len(stacked), config.batch_size)]
    vectors = np.concatenate(parts, axis=0)
    sums = np.zeros((len(chunks), speakers, vectors.shape[1]), dtype=np.float64)
    valid = np.zeros((len(chunks), speakers), dtype=bool)
    for (c, s), vector in zip(owners, vectors, strict=True):
        sums[c, s] += vector
        valid[c, s] = True
    return l2_normalize(sums).astype(np.float32) * valid[..., None], valid
