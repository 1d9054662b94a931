"""What every live diarization session is: its step, its reports and its rule for `final`."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from voiceflow import SAMPLE_RATE, STREAM_FEED_SAMPLES
from voiceflow.blocks.stepper import Stepper
from voiceflow.live import LiveLedger, latest
from voiceflow.segments import Segment


class BlockSession(ABC):
    """One live diarization session: PCM (float32, 16 kHz) in any chunking, speaker segments out.

    Step: the session steps every `step_samples` (voiceflow.STREAM_FEED_SAMPLES, 0.5 s) of its own
    stream, counted from the stream's start, whatever the chunks it is fed; the end of the stream
    is a last, partial step. Its blocks may hop at their own rate inside a step (the embedding
    pipelines decide speakers every 0.48 s), but everything the session reports is computed at its
    steps, so `feed`, `flush` and `finish` give the same result for any chunking of the same audio.

    Reports: a segment is identified by (speaker, start); `feed` returns the segments that the
    steps it completed created or changed (a later report of a segment replaces an earlier one),
    `flush` ends the stream and returns what that changed, `finish` returns the whole stream.

    Final, one rule for every pipeline (`voiceflow.blocks.base.settled`): a segment is final once
    it ends before the stream's edge (the first instant whose speaker may still change) by more
    than the merge gap, so no later audio can change, extend or join it; one reaching the edge is
    a draft (final=False), reported again as it grows. A segment is reported once it starts before
    the edge. At the end of the stream the edge is the stream's end: every segment is final, and
    the `final: true` segments `feed` and `flush` reported are exactly `finish()`'s.
    """

    step_samples: int = STREAM_FEED_SAMPLES

    def __init__(self) -> None:
        self._samples_fed = 0
        self._finished = False
        self._ledger = LiveLedger()
        self._stepper = Stepper(self.step_samples)

    @property
    def duration(self) -> float:
        """Seconds of audio fed so far."""
        return self._samples_fed / SAMPLE_RATE

    @property
    @abstractmethod
    def num_speakers(self) -> int: ...

    def feed(self, samples: np.ndarray) -> list[Segment]:
        """Push audio; returns the segments the steps it completed created or changed."""
        reports = [self._ledger.report(self._step(block)) for block in self._stepper.push(self._accept(samples))]
        return latest(reports)

    def flush(self) -> list[Segment]:
        """End of the stream: decide the rest of the audio and return what that changed, as
        `feed` reports it (all final). After it, the `final: true` segments `feed` and `flush`
        returned are exactly `finish()`'s; `finish()` still gives the whole stream."""
        return self._ledger.report(self.finish())

    def finish(self) -> list[Segment]:
        """End of the stream: decide the rest of the audio; the whole stream's diarization, all final."""
        if not self._finished:
            self._close(self._stepper.drain())
            self._finished = True
        return self._result()

    @abstractmethod
    def _step(self, audio: np.ndarray) -> list[Segment]:
        """Run one whole step of audio; the current view of the segments that may have changed."""

    @abstractmethod
    def _close(self, tail: np.ndarray) -> None:
        """Run the partial last step (`tail`, possibly empty) and decide everything left."""

    @abstractmethod
    def _result(self) -> list[Segment]:
        """The whole stream's segments, all final (after `_close`)."""

    def _accept(self, samples: np.ndarray) -> np.ndarray:
        """A feed's audio as a flat float32 copy, counted; refused after finish() or with NaN/inf."""
        if self._finished:
            raise RuntimeError("session already finished")
        # A copy: the session holds audio across calls, and a client may reuse its buffer.
        audio = np.array(samples, dtype=np.float32).reshape(-1)
        if audio.size and not np.all(np.isfinite(audio)):
            raise ValueError("audio contains NaN or infinite samples")
        self._samples_fed += audio.size
        return audio
