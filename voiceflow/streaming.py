"""One streaming diarization session: PCM chunks of any size in, stable speaker segments out.

The CLI's `--streaming` mode and the inference pod's WebSocket handler both drive this object.
Blocks (diart-style, over a rolling buffer):
  VAD (Silero, causal, 32 ms frames) -> every `step_seconds` of audio, one embedding of the last
  `window_seconds` when it holds enough speech -> online clustering (labels never change once
  given) -> the frames of that step take the speaker.
A segment is `final` once no later audio can change or extend it. Embedding goes through an
injectable `embed(windows) -> embeddings` callable so a server can batch across sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from voiceflow import SAMPLE_RATE
from voiceflow.clustering.online import OnlineClusterer, OnlineClusteringConfig
from voiceflow.clustering.plda import PLDA, model_plda
from voiceflow.embedding import EmbeddingModel
from voiceflow.live import LiveLedger
from voiceflow.segmentation.model import MIN_CHUNK_SAMPLES, SegmentationModel
from voiceflow.segmentation.overlap import OverlapConfig, second_speakers
from voiceflow.segments import Segment, frames_to_segments, merge_adjacent, merge_per_speaker
from voiceflow.vad import CHUNK, FRAME_SECONDS, SileroVAD, VADConfig, probabilities_to_mask

EmbedFn = Callable[[np.ndarray], np.ndarray]

VAD_CONTEXT_FRAMES = 64  # ~2 s of probabilities behind a step for its VAD post-processing
PENDING = -2  # speech whose speaker is a not-yet-confirmed new candidate
SILENCE = -1


@dataclass(frozen=True)
class StreamingConfig:
    window_seconds: float = 1.6
    step_seconds: float = 0.48  # a multiple of the 32 ms VAD frame
    min_window_speech: float = 0.4
    max_gap_merge: float = 0.0
    vad: VADConfig = field(default_factory=VADConfig)
    clustering: OnlineClusteringConfig = field(default_factory=OnlineClusteringConfig)

    def __post_init__(self) -> None:
        if not 0.5 <= self.window_seconds <= 10.0:
            raise ValueError("window_seconds must be within 0.5..10")
        if not FRAME_SECONDS <= self.step_seconds <= self.window_seconds:
            raise ValueError("step_seconds must be within one VAD frame and window_seconds")

    @property
    def step_frames(self) -> int:
        return max(1, round(self.step_seconds / FRAME_SECONDS))

    @property
    def window_frames(self) -> int:
        return max(1, round(self.window_seconds / FRAME_SECONDS))


class StreamInput:
    """What every streaming session shares: the checks on fed audio, the stream's clock, and the
    ledger of what was reported (a segment is reported again only when it changed, and once more
    when it became final, however the audio was chunked)."""

    def __init__(self) -> None:
        self._samples_fed = 0
        self._finished = False
        self._ledger = LiveLedger()

    @property
    def duration(self) -> float:
        return self._samples_fed / SAMPLE_RATE

    def finish(self) -> list[Segment]:
        raise NotImplementedError

    def flush(self) -> list[Segment]:
        """End of the stream: decide the rest of the audio and return what that changed, as
        `feed` reports it (all final). After it, the `final: true` segments `feed` and `flush`
        returned are exactly `finish()`'s; `finish()` still gives the whole stream."""
        return self._ledger.report(self.finish())

    def _accept(self, samples: np.ndarray) -> np.ndarray:
        """A feed's audio as flat float32, counted; refused after finish() or with NaN/inf samples."""
        if self._finished:
            raise RuntimeError("session already finished")
        audio = np.asarray(samples, dtype=np.float32).reshape(-1)
        if audio.size and not np.all(np.isfinite(audio)):
            raise ValueError("audio contains NaN or infinite samples")
        self._samples_fed += audio.size
        return audio


class StreamingSession(StreamInput):
    def __init__(
        self,
        embed: EmbedFn,
        config: StreamingConfig | None = None,
        vad: SileroVAD | None = None,
        background_mean: np.ndarray | None = None,
        overlap_model: SegmentationModel | None = None,
        overlap_config: OverlapConfig | None = None,
        plda: PLDA | None = None,
    ) -> None:
        super().__init__()
        # The embedding-overlap pipeline: a detector that counts speakers; where it hears two,
        # a decided frame also gets the nearest other voice as a second speaker.
        self.overlap_model = overlap_model
        self.overlap_config = overlap_config or OverlapConfig()
        self.config = config or StreamingConfig()
        self.embed = embed
        # Subtracted before online clustering (see scripts/background_mean.py): the direction all
        # embeddings share otherwise dominates the cosine between different speakers.
        self.background_mean = background_mean
        self.vad = vad or SileroVAD()
        # "plda" scoring reads the embeddings after the background mean is taken off, when it is
        self.clusterer = OnlineClusterer(self.config.clustering, plda, centred=background_mean is not None)
        # Rolling audio: only the window behind the oldest undecided step is kept, so memory
        # stays bounded however long the stream runs. `_buffer[0]` is stream sample `_buffer_start`.
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0
        self._labels: list[int] = []
        self._second: list[int] = []  # second speaker per frame (embedding-overlap), else SILENCE
        self._second_done = 0  # frames before this have their second speaker decided
        self._speech: list[bool] = []
        self._processed_frames = 0  # frames whose speaker decision has been made
        # Every segment before this frame is final and reported, and none crosses it: each feed
        # recomputes the segments from here on only.
        self._emit_from = 0
        # Pending frames always come after every assigned frame (an assignment settles them all),
        # so one index is enough to find them without scanning the stream's history.
        self._first_pending: int | None = None
        self._last_speaker: int | None = None
        self._probs: list[float] = []

    @classmethod
    def for_model(
        cls,
        model: EmbeddingModel,
        embed: EmbedFn | None = None,
        config: StreamingConfig | None = None,
        overlap_model: SegmentationModel | None = None,
        vad: SileroVAD | None = None,
    ) -> StreamingSession:
        """A session on `model` (its background mean included); `embed` (and `vad`'s runner) may
        route through a batcher."""
        plda = model_plda(model) if config is not None and config.clustering.scoring == "plda" else None
        return cls(
            embed or model.embed,
            config,
            vad=vad,
            background_mean=model.background_mean,
            overlap_model=overlap_model,
            plda=plda,
        )

    @property
    def num_speakers(self) -> int:
        return self.clusterer.num_speakers

    def feed(self, samples: np.ndarray) -> list[Segment]:
        """Push audio (float32, 16 kHz); returns the segments this call created or changed."""
        self._ingest(self._accept(samples))
        return self._ledger.report(self._live_view())

    def finish(self) -> list[Segment]:
        """Flush: decide the remaining audio and return the whole stream's diarization, all final."""
        if not self._finished:
            partial = self.vad.pending_samples
            if partial:
                # Complete the VAD's last partial chunk with silence; it is not stream time.
                self._ingest(np.zeros(CHUNK - partial, dtype=np.float32))
            self._decide_steps(final=True)
            if self.overlap_model is not None:
                self._assign_second(len(self._labels), len(self._labels))
            self._finished = True
        # Candidates never confirmed by the end belong to the nearest known speaker's run.
        labels = np.array(self._labels, dtype=int)
        labels[labels == PENDING] = SILENCE if self.clusterer.num_speakers == 0 else self._nearest_known(labels)
        return self._segments(labels, np.array(self._second, dtype=int), 0)

    # -- internals -------------------------------------------------------------------------

    def _ingest(self, audio: np.ndarray) -> None:
        """VAD the audio, buffer it and decide every step it completes."""
        probs = self.vad.feed(audio)
        self._buffer = np.concatenate([self._buffer, audio])
        for p in probs:
            self._probs.append(float(p))
            self._speech.append(False)  # set when the frame's step is decided (see _decide_speakers)
            self._labels.append(SILENCE)
            self._second.append(SILENCE)
        self._decide_steps(final=False)
        self._trim_buffer()

    def _trim_buffer(self) -> None:
        behind = self.config.window_frames * CHUNK
        if self.overlap_model is not None:
            behind = max(behind, self.overlap_model.chunk_samples)  # the detector's context
        keep_from = max(0, self._processed_frames * CHUNK - behind)
        drop = keep_from - self._buffer_start
        if drop > 0:
            self._buffer = self._buffer[drop:].copy()
            self._buffer_start = keep_from

    def _decide_steps(self, final: bool) -> None:
        """Label every complete step not yet decided."""
        step = self.config.step_frames
        available = len(self._labels)
        while self._processed_frames + step <= available or (final and self._processed_frames < available):
            start = self._processed_frames
            end = min(start + step, available)
            self._decide_speakers(start, end)
            if self.overlap_model is not None:
                self._assign_second(end - round(self.overlap_config.delay_seconds / FRAME_SECONDS), end)
            self._processed_frames = end

    def _assign_second(self, until: int, decided: int) -> None:
        """Second speakers for frames [_second_done, until) where the detector hears two: the
        nearest frame with another voice among the decided frames (up to `decided`) within reach."""
        assert self.overlap_model is not None
        lo_frame, until = self._second_done, max(until, self._second_done)
        if until == lo_frame:
            return
        self._second_done = until
        stop = decided * CHUNK
        frame = self.overlap_model.frame_samples
        # The detector's frames sit on the stream's own 20 ms grid (as in the segmentation pipeline).
        begin = -(-max(self._buffer_start, stop - self.overlap_model.chunk_samples) // frame) * frame
        chunk = self._buffer[begin - self._buffer_start : stop - self._buffer_start]
        if chunk.size < MIN_CHUNK_SAMPLES:
            return
        counts = self.overlap_model.count(chunk[None, :])[0]
        index = (((np.arange(lo_frame, until) + 0.5) * CHUNK - begin) // frame).astype(int)
        heard = np.zeros(until - lo_frame, dtype=bool)
        inside = (index >= 0) & (index < len(counts))
        heard[inside] = counts[index[inside]] >= 2
        if not heard.any():
            return
        reach = round(self.overlap_config.max_reach_seconds / FRAME_SECONDS)
        lo = max(0, lo_frame - reach)
        labels = np.array(self._labels[lo:decided], dtype=int)
        overlap = np.zeros(len(labels), dtype=bool)
        overlap[lo_frame - lo : until - lo] = heard
        second = second_speakers(labels, np.zeros((len(labels), 0)), overlap, reach)
        self._second[lo_frame:until] = second[lo_frame - lo : until - lo].tolist()

    def _decide_speakers(self, start: int, end: int) -> None:
        # At decision time the whole step is known, so the step gets the offline VAD rules
        # (padding, gap filling, blip removal) over its recent context, not just causal hysteresis.
        lo = max(0, start - VAD_CONTEXT_FRAMES)
        refined = probabilities_to_mask(np.array(self._probs[lo:end], dtype=np.float32), self.config.vad)
        self._speech[start:end] = refined[start - lo :].tolist()
        speech = refined[start - lo :]
        if not speech.any():
            return
        window_start = max(0, end - self.config.window_frames)
        window_speech = np.mean(self._speech[window_start:end])
        stop = end * CHUNK - self._buffer_start
        window = self._buffer[max(0, stop - self.config.window_frames * CHUNK) : stop]
        too_little = window_speech < self.config.min_window_speech and end - window_start >= self.config.window_frames
        if too_little or window.size < 400:
            # Too little speech to embed reliably: the speech still happened. Give it to whoever
            # spoke last rather than drop it (dropping it is all missed speech).
            if self._last_speaker is None:
                return
            for i in range(start, end):
                if self._speech[i]:
                    self._labels[i] = self._last_speaker
            return
        embedding = self.embed(window[None, :])[0]
        if self.background_mean is not None:
            embedding = embedding - self.background_mean
        speaker = self.clusterer.assign(embedding)
        if speaker is not None:
            self._last_speaker = speaker
        label = PENDING if speaker is None else speaker
        if speaker is not None and self._first_pending is not None:
            # A confirmed candidate (or a rejoin) settles the frames that were waiting on it.
            for i in range(self._first_pending, start):
                if self._labels[i] == PENDING:
                    self._labels[i] = speaker
            self._first_pending = None
        for i in range(start, end):
            if self._speech[i]:
                self._labels[i] = label
                if label == PENDING and self._first_pending is None:
                    self._first_pending = i

    def _nearest_known(self, labels: np.ndarray) -> np.ndarray:
        out = labels.copy()
        known = np.flatnonzero(labels >= 0)
        for i in np.flatnonzero(labels == PENDING):
            out[i] = labels[known[np.argmin(np.abs(known - i))]] if known.size else SILENCE
        return out[labels == PENDING]

    def _segments(self, labels: np.ndarray, second: np.ndarray, first_frame: int) -> list[Segment]:
        """Frame labels (and second speakers) from stream frame `first_frame` on -> segments, merged
        the one way both the live view and finish() use, so their segments are the same."""
        segs = frames_to_segments(labels, FRAME_SECONDS, first_frame=first_frame)
        if self.overlap_model is None:
            return merge_adjacent(segs, self.config.max_gap_merge)
        second_segs = frames_to_segments(second, FRAME_SECONDS, first_frame=first_frame)
        return merge_per_speaker(segs + second_segs, self.config.max_gap_merge)

    def _mutable_from(self) -> int:
        """The first frame whose speaker may still change: undecided, waiting on a candidate
        speaker, or (embedding-overlap) still waiting for its second speaker."""
        frame = self._processed_frames
        if self._first_pending is not None:
            frame = min(frame, self._first_pending)
        if self.overlap_model is not None:
            frame = min(frame, self._second_done)
        return frame

    def _live_view(self) -> list[Segment]:
        """The segments from `_emit_from` on as finish() will give them, except those whose start
        may still move (they start in audio that may still change); final once no later audio
        can change or extend them. Advances `_emit_from` past what is final."""
        lo, mutable = self._emit_from, self._mutable_from()
        labels = np.array(self._labels[lo:], dtype=int)
        labels[labels == PENDING] = SILENCE  # not yet anyone's: shown once its speaker is known
        horizon = mutable * FRAME_SECONDS - 1e-9
        gap = self.config.max_gap_merge
        view = [
            Segment(seg.start, seg.end, seg.speaker, seg.end + gap < horizon)
            for seg in self._segments(labels, np.array(self._second[lo:], dtype=int), lo)
            if seg.start < horizon
        ]
        drafts = [seg.start for seg in view if not seg.final]
        self._emit_from = round(min(drafts) / FRAME_SECONDS) if drafts else max(lo, mutable)
        return view
