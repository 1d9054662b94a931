"""The exported default model equals its torch reference, and its front end equals librosa's."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
librosa = pytest.importorskip("librosa")


def test_slaney_filterbank_matches_librosa() -> None:
    from pipelines.nn.frontend import slaney_mel_filterbank

    expected = librosa.filters.mel(sr=16000, n_fft=400, n_mels=40)
    np.testing.assert_allclose(slaney_mel_filterbank(), expected, rtol=1e-5, atol=1e-7)


def test_in_graph_mel_matches_resemblyzer_spectrogram() -> None:
    from pipelines.nn.frontend import MelFrontend

    wav = (np.random.default_rng(0).standard_normal(25600) * 0.1).astype(np.float32)
    ours = MelFrontend(normalize_volume=False)(torch.from_numpy(wav[None]))[0].numpy()
    theirs = librosa.feature.melspectrogram(y=wav, sr=16000, n_fft=400, hop_length=160, n_mels=40).T
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-5)


def test_bundled_ge2e_onnx_matches_torch_reference() -> None:
    """The bundled GE2E file, not the default model: a promoted student has its own parity test."""
    from pipelines.export.ge2e import build_ge2e_module
    from voiceflow.embedding import DEFAULT_MODEL, EmbeddingModel

    embedding_model = EmbeddingModel.load(DEFAULT_MODEL)

    rng = np.random.default_rng(1)
    windows = (rng.standard_normal((3, 25600)) * rng.uniform(0.001, 0.3, (3, 1))).astype(np.float32)
    reference = build_ge2e_module()(torch.from_numpy(windows)).detach().numpy()
    np.testing.assert_allclose(embedding_model.embed(windows), reference, atol=1e-5)


def test_encoder_matches_resemblyzer_voice_encoder() -> None:
    """Our GE2E module on resemblyzer's own mel input gives resemblyzer's embedding."""
    resemblyzer = pytest.importorskip("resemblyzer")
    from pipelines.nn.ge2e import GE2EEncoder

    wav = (np.random.default_rng(2).standard_normal(25600) * 0.1).astype(np.float32)
    mels = torch.from_numpy(resemblyzer.audio.wav_to_mel_spectrogram(wav)[None, :160])
    ours = GE2EEncoder.pretrained()(mels).detach().numpy()
    theirs = resemblyzer.VoiceEncoder(device="cpu", verbose=False)(mels).detach().numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
