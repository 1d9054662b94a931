"""The engine's VAD halves: rebuilt from the bundled Silero model byte for byte, and giving the
source model's probabilities on real speech (the source model driven frame by frame, as
silero-vad's own OnnxWrapper drives it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.export.silero_split import main, silero_weights, source_probabilities, split_silero
from tests.real_speech import dev00
from voiceflow.vad import DEFAULT_VAD_MODEL, SileroVAD, VADModel, split_model_paths


def test_the_shipped_halves_are_what_the_builder_writes(tmp_path: Path) -> None:
    assert main(["--out-dir", str(tmp_path)]) == 0
    for shipped in split_model_paths(DEFAULT_VAD_MODEL):
        assert (tmp_path / shipped.name).read_bytes() == shipped.read_bytes(), shipped.name


def test_the_halves_give_the_source_models_probabilities_and_state() -> None:
    audio = dev00(20)
    reference, reference_state = source_probabilities(audio)
    vad = SileroVAD()
    probs = vad.probabilities(audio)
    assert probs.shape == reference.shape
    assert np.abs(probs - reference).max() < 1e-5
    assert np.allclose(vad._state, reference_state, rtol=1e-5, atol=1e-5)
    # the decisions the engine takes from them are the same
    for threshold in (0.35, 0.5):
        assert np.array_equal(probs >= threshold, reference >= threshold)
    assert 0.2 < float((probs >= 0.5).mean()) < 1.0  # real speech with pauses: both classes occur


def test_long_recordings_are_read_in_pieces_with_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    import voiceflow.vad as vad_module

    audio = dev00(12)
    whole = SileroVAD().probabilities(audio)
    monkeypatch.setattr(vad_module, "ENCODER_ROWS", 7)  # pieces that end mid-recording, and a short last one
    assert np.array_equal(SileroVAD().probabilities(audio), whole)
    monkeypatch.setattr(vad_module, "SEQUENCE_FRAMES", 50)  # decoder calls of 50 frames, the state carried on
    vad = SileroVAD()
    assert np.array_equal(vad.probabilities(audio), whole)
    together = vad_module.recording_probabilities(vad.model, [audio, audio[: 16000 * 5 + 77], audio[:0]])
    assert np.array_equal(together[0], whole) and np.array_equal(together[1], whole[: len(together[1])])
    assert together[2].size == 0


def test_a_graph_that_is_not_silero_v5_is_refused(tmp_path: Path) -> None:
    from voiceflow.embedding import MODELS_DIR

    with pytest.raises(ValueError, match="not a Silero VAD v5 graph"):
        silero_weights(MODELS_DIR / "ge2e.onnx")


def test_missing_halves_name_the_command_that_builds_them(tmp_path: Path) -> None:
    source = tmp_path / "silero_vad.onnx"
    source.write_bytes(DEFAULT_VAD_MODEL.read_bytes())
    with pytest.raises(FileNotFoundError, match=r"pipelines\.export\.silero_split"):
        VADModel.load(source)
    split_silero(source)
    assert VADModel.load(source).run([]) == []
