"""The offline pipelines' shared call shape (voiceflow.diarizer): bounds, resampling, files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from voiceflow import SAMPLE_RATE
from voiceflow.clustering.labels import UNBOUNDED, SpeakerBounds
from voiceflow.diarizer import OfflineDiarizer, ProgressCallback
from voiceflow.pipeline import Diarizer
from voiceflow.segmentation.offline import SegmentationDiarizer
from voiceflow.segments import Segment


class Recorder(OfflineDiarizer):
    """A pipeline that only records what the template hands it."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, SpeakerBounds, np.ndarray | None]] = []

    def diarize_16k(
        self, audio: np.ndarray, bounds: SpeakerBounds, progress: ProgressCallback | None, speech: np.ndarray | None
    ) -> list[Segment]:
        self.calls.append((len(audio), bounds, speech))
        return [Segment(0.0, len(audio) / SAMPLE_RATE, "SPEAKER_00")]


def test_both_pipelines_share_the_template() -> None:
    assert issubclass(Diarizer, OfflineDiarizer)
    assert issubclass(SegmentationDiarizer, OfflineDiarizer)


@pytest.mark.parametrize(
    "bounds",
    [{"num_speakers": 0}, {"min_speakers": 0}, {"max_speakers": -1}, {"min_speakers": 3, "max_speakers": 2}],
)
def test_bad_bounds_are_refused_before_the_pipeline_runs(bounds: dict[str, Any]) -> None:
    recorder = Recorder()
    with pytest.raises(ValueError):
        recorder.diarize(np.zeros(SAMPLE_RATE, np.float32), **bounds)
    assert recorder.calls == []


def test_the_pipeline_gets_16k_audio_bounds_and_speech() -> None:
    recorder = Recorder()
    speech = np.ones(10, dtype=bool)
    recorder.diarize(np.zeros(8000, np.float32), 8000, min_speakers=2, max_speakers=4, speech=speech)
    recorder.diarize(np.zeros(SAMPLE_RATE, np.float32))
    (length, bounds, got), (_, default, none) = recorder.calls
    assert length == SAMPLE_RATE  # one second at 8 kHz, resampled
    assert bounds == SpeakerBounds(None, 2, 4) and got is speech
    assert default == UNBOUNDED and none is None


def test_diarize_file_reads_the_file_at_16k(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(22050, np.float32), 22050)
    recorder = Recorder()
    assert recorder.diarize_file(path, num_speakers=1)[0].end == pytest.approx(1.0, abs=1e-3)
    assert recorder.calls[0][1] == SpeakerBounds(num=1)


def test_the_segmentation_pipeline_takes_no_speech_mask() -> None:
    stand_in: Any = object()  # never reached: the mask is refused first
    diarizer = SegmentationDiarizer(embedding_model=stand_in, segmentation_model=stand_in)
    with pytest.raises(ValueError, match="speech mask"):
        diarizer.diarize(np.zeros(SAMPLE_RATE, np.float32), speech=np.ones(31, dtype=bool))
