"""Whole recordings' VAD in one model run (`voiceflow batch` runs a worker's files so) gives each
recording exactly the probabilities, the mask and the diarization it gets alone."""

from __future__ import annotations

import numpy as np
import pytest

from tests.real_speech import dev00
from voiceflow.vad import CHUNK, SileroVAD, recording_probabilities


def test_recordings_read_together_equal_each_alone() -> None:
    audio = dev00(12)
    # different speech and different lengths (one ends mid-frame, one is shorter than a frame,
    # one is empty): recordings of every length share the run
    recordings = [
        audio,
        np.roll(audio, -7919)[: audio.size - 16000 * 5 - 100],
        np.roll(audio, -31337)[: audio.size // 3],
        audio[: CHUNK - 1],
        audio[:0],
    ]
    together = recording_probabilities(SileroVAD.shared_model(), recordings)
    for recording, probabilities in zip(recordings, together, strict=True):
        alone = SileroVAD().probabilities(recording)
        assert probabilities.dtype == alone.dtype and np.array_equal(probabilities, alone)
    assert recording_probabilities(SileroVAD.shared_model(), []) == []


def test_diarizer_given_shared_run_masks_gives_the_same_segments() -> None:
    from voiceflow.embedding import EmbeddingModel
    from voiceflow.pipeline import Diarizer

    audio = dev00(30)
    recordings = [audio, np.roll(audio, -48000)[:400000]]
    diarizer = Diarizer(embedding_model=EmbeddingModel.load())
    speeches = diarizer.speech_per_recording(recordings)
    for recording, speech in zip(recordings, speeches, strict=True):
        alone = diarizer.speech(recording)
        assert np.array_equal(speech.mask, alone.mask) and np.array_equal(speech.heard, alone.heard)
        assert diarizer.diarize(recording, speech=speech) == diarizer.diarize(recording)
    with pytest.raises(ValueError, match="speech mask"):
        diarizer.diarize(audio, speech=speeches[1])
