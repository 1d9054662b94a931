"""The embedding pipelines' live session: blocks on the VAD's frame grid, composed.

  speech (Silero VAD, causal, 32 ms frames; the offline VAD rules at each `step_seconds` hop)
  -> embedding (every `embedding_hops` hops, one embedding of the last `window_seconds` when it
     holds enough speech) -> online clustering (labels never change once given; the speech frames
     of those hops take the speaker) [-> second speakers (embedding-overlap: where the overlap
     detector hears two, the nearest other voice)] -> aggregation (the frame tracks -> segments).
Embedding goes through an injectable `embed(windows) -> embeddings` callable (and the VAD through
an injectable runner) so a server can batch across sessions. The session interface (steps,
reports, the rule for `final`) is `voiceflow.blocks.session.BlockSession`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from voiceflow.blocks.aggregation import FrameSegments, FrameTrack
from voiceflow.blocks.audio import RollingAudio
from voiceflow.blocks.base import Block, FrameHop
from voiceflow.blocks.clustering import OnlineLabels
from voiceflow.blocks.embedding import EmbedFn, WindowEmbedding
from voiceflow.blocks.session import BlockSession
from voiceflow.blocks.speech import SpeechBlock
from voiceflow.clustering.online import OnlineClusterer, OnlineClusteringConfig
from voiceflow.clustering.plda import PLDA, model_plda
from voiceflow.embedding import EmbeddingModel
from voiceflow.pauses import PauseRules
from voiceflow.segmentation.blocks import SecondSpeakers
from voiceflow.segmentation.model import SegmentationModel
from voiceflow.segmentation.overlap import OverlapConfig
from voiceflow.segments import Segment
from voiceflow.vad import CHUNK, FRAME_SECONDS, SileroVAD, VADConfig
from voiceflow.validation import require_windows

__all__ = ["EmbedFn", "StreamingConfig", "StreamingSession"]


@dataclass(frozen=True)
class StreamingConfig:
    window_seconds: float = 1.6
    step_seconds: float = 0.48  # the speech decision hop: a multiple of the 32 ms VAD frame
    # Speakers are decided every `embedding_hops` speech hops, from one embedding of the window
    # ending there; the frames of the hops between wait for it. 2 halves the embedding, the larger
    # part of a stream's CPU (with clustering.confirm_windows 2, which keeps the wait before a new
    # speaker at ~2 s); on the dev suite it is not robustly better or worse, so 1 stays the
    # default (docs/evaluation.md, "One embedding every second hop").
    embedding_hops: int = 1
    min_window_speech: float = 0.4
    # The offline rules, live: a change is placed when its hop's speaker is given, with the pauses
    # heard up to that hop's end (nothing final moves), and the own pause is the merge gap that
    # joins a speaker's two segments.
    pauses: PauseRules = field(default_factory=PauseRules)
    vad: VADConfig = field(default_factory=VADConfig)
    clustering: OnlineClusteringConfig = field(default_factory=OnlineClusteringConfig)

    def __post_init__(self) -> None:
        # The live step is a whole number of VAD frames.
        require_windows(self.window_seconds, self.step_seconds, self.min_window_speech, min_step_seconds=FRAME_SECONDS)
        if not 1 <= self.embedding_hops <= 8:
            raise ValueError("embedding_hops must be within 1..8")

    @property
    def step_frames(self) -> int:
        return max(1, round(self.step_seconds / FRAME_SECONDS))

    @property
    def window_frames(self) -> int:
        return max(1, round(self.window_seconds / FRAME_SECONDS))


class StreamingSession(BlockSession):
    """The embedding pipeline, or with `overlap_model` (a detector that counts speakers) the
    embedding-overlap pipeline: its second-speaker block joins the others."""

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
        self.config = config or StreamingConfig()
        self.background_mean = background_mean
        self.audio = RollingAudio()
        self.speech = SpeechBlock(vad or SileroVAD(), self.config.vad)
        embedding = WindowEmbedding(
            embed, self.audio, self.speech, self.config.window_frames, self.config.min_window_speech, background_mean
        )
        # "plda" scoring reads the embeddings after the background mean is taken off, when it is.
        self.labels = OnlineLabels(
            OnlineClusterer(self.config.clustering, plda, centred=background_mean is not None),
            change_reach_frames=self.config.pauses.reach_frames(FRAME_SECONDS),
        )
        # The blocks after speech run once per `embedding_hops` speech hops, on the hops joined.
        speaker_blocks: list[Block[FrameHop]] = [embedding, self.labels]
        tracks: list[FrameTrack] = [self.labels]
        if overlap_model is not None:
            second = SecondSpeakers(overlap_model, overlap_config or OverlapConfig(), self.audio, self.labels)
            speaker_blocks.append(second)
            tracks.append(second)
        self.speaker_blocks = tuple(speaker_blocks)
        self.aggregation = FrameSegments(tracks, self.config.pauses.own_pause_seconds)
        self._context = max(block.context_samples for block in (self.speech, *self.speaker_blocks))
        self._decided = 0  # frames whose speech hop has been run
        self._waiting: list[FrameHop] = []  # speech hops whose speakers are not decided yet

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
    def clusterer(self) -> OnlineClusterer:
        return self.labels.clusterer

    @property
    def num_speakers(self) -> int:
        return self.clusterer.num_speakers

    @property
    def blocks(self) -> tuple[Block[FrameHop], ...]:
        return (self.speech, *self.speaker_blocks)

    @property
    def _labelled(self) -> int:
        """Frames whose speakers have been decided (the speech hops waiting come after)."""
        return self._waiting[0].start if self._waiting else self._decided

    def _step(self, audio: np.ndarray) -> list[Segment]:
        self._ingest(audio)
        return self.aggregation.live(min(block.mutable_from(self._labelled) for block in self.blocks))

    def _close(self, tail: np.ndarray) -> None:
        if tail.size:
            self._ingest(tail)
        if self.speech.padding:
            # Complete the VAD's last partial frame with silence; it is not stream time.
            self._ingest(np.zeros(self.speech.padding, dtype=np.float32))
        self._run_hops(final=True)
        self._decide_speakers()
        for block in self.blocks:
            block.close()

    def _result(self) -> list[Segment]:
        return self.aggregation.result()

    def _ingest(self, audio: np.ndarray) -> None:
        """VAD the audio, hold it and run every hop it completes."""
        self.speech.feed(audio)
        self.audio.append(audio)
        self._run_hops(final=False)
        self.audio.forget_before(max(0, self._labelled * CHUNK - self._context))

    def _run_hops(self, final: bool) -> None:
        """Run speech on every whole hop not yet run (and the partial last one when final), and the
        speaker blocks on every `embedding_hops` of them."""
        step, available = self.config.step_frames, self.speech.frames
        while self._decided + step <= available or (final and self._decided < available):
            hop = FrameHop(self._decided, min(self._decided + step, available))
            self.speech(hop)
            self._decided = hop.end
            self._waiting.append(hop)
            if len(self._waiting) == self.config.embedding_hops:
                self._decide_speakers()

    def _decide_speakers(self) -> None:
        """The speaker blocks on the waiting speech hops, joined into one."""
        if not self._waiting:
            return
        hops, self._waiting = self._waiting, []
        joined = FrameHop(
            hops[0].start,
            hops[-1].end,
            np.concatenate([hop.speech for hop in hops]),
            heard=np.concatenate([hop.heard for hop in hops]),
        )
        for block in self.speaker_blocks:
            block(joined)
