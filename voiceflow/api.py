"""The Python API: `voiceflow.diarize(...)` for a file or an array, `voiceflow.StreamingDiarizer` for
live audio. Both build their pipeline through `voiceflow.selection`, the one place the CLI and the
inference pod use too, so a call gives what `voiceflow diarize [--streaming]` gives.

    import voiceflow
    result = voiceflow.diarize("meeting.wav", num_speakers=3)
    result.segments          # [Segment(start=0.52, end=3.1, speaker='SPEAKER_00', final=True), ...]
    result.to_rttm()         # what `voiceflow diarize meeting.wav` prints
    result.to_annotation()   # a pyannote.core.Annotation

docs/python_api.md documents it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from voiceflow import SAMPLE_RATE
from voiceflow.audio import check_finite, check_sample_rate, load_audio
from voiceflow.config import EngineConfig
from voiceflow.embedding import EmbeddingModel
from voiceflow.live import latest, plain
from voiceflow.rttm import sanitize_uri, segments_to_rttm
from voiceflow.segments import Segment
from voiceflow.selection import StreamSession, load_segmentation_model, make_offline_diarizer, make_streaming_session

AudioInput = str | Path | np.ndarray
ModelInput = str | Path | EmbeddingModel | None


@dataclass(frozen=True)
class DiarizationResult:
    """Who spoke when in one recording: segments in time order, times in seconds (plain floats)."""

    segments: list[Segment]
    uri: str = "audio"
    duration: float = 0.0  # seconds of audio diarized

    def __post_init__(self) -> None:
        ordered = sorted(map(plain, self.segments), key=lambda s: (s.start, s.end, s.speaker))
        object.__setattr__(self, "segments", ordered)

    @property
    def speakers(self) -> list[str]:
        """The speaker labels found, sorted."""
        return sorted({s.speaker for s in self.segments})

    def to_rttm(self) -> str:
        return segments_to_rttm(self.segments, self.uri)

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri, "segments": [s.to_dict() for s in self.segments]}

    def to_json(self) -> str:
        """`voiceflow diarize --json`'s document: {"uri": ..., "segments": [{start, end, speaker, final}]}."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_annotation(self) -> Any:
        """A pyannote.core Annotation (one track per segment), for pyannote.metrics and friends."""
        from voiceflow.scoring import segments_to_annotation

        return segments_to_annotation(self.segments, self.uri)


def engine_config(pipeline: str | None = None, config: EngineConfig | None = None) -> EngineConfig:
    """The engine configuration with `pipeline` selected (None: the configuration's own), as
    `voiceflow diarize --config FILE --pipeline NAME` builds it (the flag beats the file)."""
    base = config or EngineConfig()
    return replace(base, pipeline=pipeline) if pipeline else base


def load_model(model: ModelInput = None) -> EmbeddingModel:
    """An embedding model: a loaded one as is, a path loaded, None the bundled default."""
    return model if isinstance(model, EmbeddingModel) else EmbeddingModel.load(model)


def as_audio(audio: AudioInput, sample_rate: int | None) -> tuple[np.ndarray, int, str]:
    """(samples, their rate, a uri) from a file path or an array.

    A file is decoded at 16 kHz whatever its own rate, so `sample_rate` must not be given with one;
    an array needs its rate (pyannote's {"waveform", "sample_rate"} rule) and is (time,) or
    (channel, time), mixed down to mono."""
    if isinstance(audio, str | Path):
        if sample_rate is not None:
            raise ValueError("sample_rate is for arrays; a file's own rate is read from the file")
        path = Path(audio)
        return load_audio(path), SAMPLE_RATE, sanitize_uri(path.stem)
    if sample_rate is None:
        raise ValueError("an array needs its sample_rate, e.g. voiceflow.diarize(samples, sample_rate=16000)")
    check_sample_rate(sample_rate)
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=0)  # (channel, time), as pyannote's waveforms
    if samples.ndim != 1:
        raise ValueError(f"expected audio shaped (time,) or (channel, time), got {samples.shape}")
    check_finite(samples)
    return samples, sample_rate, "audio"


def diarize(
    audio: AudioInput,
    sample_rate: int | None = None,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    pipeline: str | None = None,
    model: ModelInput = None,
    *,
    config: EngineConfig | None = None,
    segmentation_model: str | Path | None = None,
) -> DiarizationResult:
    """Diarize a file (WAV/FLAC/OGG, any rate) or an array of samples at `sample_rate`.

    `pipeline`: "embedding", "segmentation" or "embedding-overlap" (None: the default, as the CLI);
    `model`: an embedding model path or a loaded `EmbeddingModel` (None: the bundled default);
    `config`: an `EngineConfig` (e.g. from `voiceflow.config.load_engine_config`) for every other
    setting. Speaker bounds are validated like the CLI's (ValueError when they contradict).
    """
    samples, rate, uri = as_audio(audio, sample_rate)
    engine = engine_config(pipeline, config)
    embedding = load_model(model)
    network = load_segmentation_model(engine, str(segmentation_model) if segmentation_model else None)
    diarizer = make_offline_diarizer(engine, embedding, network)
    segments = diarizer.diarize(
        samples, rate, num_speakers=num_speakers, min_speakers=min_speakers, max_speakers=max_speakers
    )
    return DiarizationResult(segments, uri, samples.size / rate)


@dataclass
class StreamingDiarizer:
    """Live diarization: `feed` audio chunks of any size as they arrive, `finish` at the end.

        stream = voiceflow.StreamingDiarizer(sample_rate=48000)
        for chunk in chunks:                 # float32 samples at 48 kHz
            for seg in stream.feed(chunk):   # new or changed segments; final=True ones never change
                print(seg)
        for seg in stream.flush():           # what the end finalized (optional)
            print(seg)
        result = stream.finish()             # the whole stream, as voiceflow.diarize's result

    Segments are identified by (speaker, start): a later update with the same pair replaces the
    earlier one, and every segment comes once more with final=True, so the final ones `feed` and
    `flush` give are exactly `finish()`'s segments (docs/protocol.md, the same session as the pod's).
    """

    sample_rate: int = SAMPLE_RATE
    pipeline: str | None = None
    model: ModelInput = None
    config: EngineConfig | None = None
    segmentation_model: str | Path | None = None
    uri: str = "stream"
    _session: StreamSession = field(init=False, repr=False)
    _resampler: Any = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        check_sample_rate(self.sample_rate)
        engine = engine_config(self.pipeline, self.config)
        network = load_segmentation_model(engine, str(self.segmentation_model) if self.segmentation_model else None)
        self._session = make_streaming_session(engine, load_model(self.model), segmentation_model=network)
        if self.sample_rate != SAMPLE_RATE:
            import soxr

            # One resampler for the whole stream: resampling chunk by chunk would click at their edges.
            self._resampler = soxr.ResampleStream(self.sample_rate, SAMPLE_RATE, 1, dtype="float32")

    @property
    def duration(self) -> float:
        """Seconds of audio fed so far."""
        return self._session.duration

    def feed(self, samples: Iterable[float] | np.ndarray) -> list[Segment]:
        """Push mono float samples at `sample_rate`; returns the segments created or changed."""
        audio = np.asarray(samples, dtype=np.float32).reshape(-1)
        check_finite(audio)
        if self._resampler is not None:
            audio = self._resampler.resample_chunk(audio, last=False)
        return list(map(plain, self._session.feed(audio)))

    def flush(self) -> list[Segment]:
        """End of audio: the segments that finalized (what `feed` would have reported)."""
        return latest([self._drain_resampler(), self._session.flush()])

    def finish(self) -> DiarizationResult:
        """End of audio: the whole stream's diarization, every segment final."""
        self._drain_resampler()
        return DiarizationResult(self._session.finish(), self.uri, self._session.duration)

    def _drain_resampler(self) -> list[Segment]:
        """Feed the resampler's last samples (once); returns what they changed."""
        if self._resampler is None:
            return []
        tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        self._resampler = None
        return self._session.feed(tail) if tail.size else []
