"""The tiny segmentation training run end to end: loss goes down, resume is exact, export works.

Synthetic voices only, so it needs no shared data; about 10-20 s on one core.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.segmentation.config import SegTrainConfig, config_from_dict, load_preset
from pipelines.segmentation.data import make_batch
from pipelines.segmentation.powerset import multilabel_to_powerset
from pipelines.segmentation.train import load_model, train, voice_pools
from pipelines.training.framework import TrainResult

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny() -> SegTrainConfig:
    config = load_preset("tiny")
    assert config.torch_threads == 1 and config.data.source == "synthetic"
    return config


@pytest.fixture(scope="module")
def tiny_run(tiny: SegTrainConfig, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return train(tiny, tmp_path_factory.mktemp("seg-tiny"), log=lambda _m: None)


def prior_entropy(config: SegTrainConfig) -> float:
    """Cross-entropy of the best frame-independent guess: the validation class frequencies."""
    pools = voice_pools(config.data)
    rng = np.random.default_rng([config.seed, 999_983])  # the trainer's validation chunks
    _, labels = make_batch(pools.val, rng, config.data.val_chunks, config.chunk_config(), config.data.snr_db)
    counts = np.bincount(multilabel_to_powerset(labels).ravel(), minlength=7)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def test_loss_decreases_on_training_and_held_out_voices(tiny: SegTrainConfig, tiny_run: TrainResult) -> None:
    assert tiny_run.model_path is not None and tiny_run.model_path.is_file()
    steps = [h["loss"] for h in tiny_run.history if h["kind"] == "step"]
    val = [h["val_loss"] for h in tiny_run.history if h["kind"] == "val"]
    assert len(steps) == tiny.steps
    assert np.mean(steps[-10:]) < 0.6 * np.mean(steps[:10])
    assert val[0] == pytest.approx(np.log(7), abs=0.2)  # untrained: close to uniform over 7 classes
    assert val[-1] < 0.6 * val[0]
    # Below the class-prior floor: it uses the audio, not only how often each class occurs.
    assert val[-1] < prior_entropy(tiny)


def test_interrupted_then_resumed_run_equals_uninterrupted(
    tiny: SegTrainConfig, tiny_run: TrainResult, tmp_path: Path
) -> None:
    first = train(tiny, tmp_path, max_steps=tiny.steps // 2 + 1, log=lambda _m: None)
    assert first.model_path is None and first.steps_done == tiny.steps // 2 + 1
    second = train(tiny, tmp_path, log=lambda _m: None)
    assert second.model_path is not None and tiny_run.model_path is not None
    a, b = torch.load(tiny_run.model_path, weights_only=False), torch.load(second.model_path, weights_only=False)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert second.history == tiny_run.history


def test_resume_with_another_config_is_refused(tiny: SegTrainConfig, tmp_path: Path) -> None:
    train(tiny, tmp_path, max_steps=1, log=lambda _m: None)
    with pytest.raises(ValueError, match="another config"):
        train(replace(tiny, lr=0.5), tmp_path, max_steps=2, log=lambda _m: None)


def test_unknown_config_keys_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown config key"):
        config_from_dict({"model": {"channel": 3}})
    with pytest.raises(ValueError, match="unknown segmentation preset"):
        load_preset("nope")


def test_trained_model_exports_and_matches_onnxruntime(tiny_run: TrainResult, tmp_path: Path) -> None:
    import onnxruntime as ort

    from pipelines.segmentation.export import OUTPUT_NAME, export_segmentation_model

    assert tiny_run.model_path is not None
    model = load_model(tiny_run.model_path)
    path = tmp_path / "tiny.onnx"
    export_segmentation_model(model, path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    wave = (np.random.default_rng(0).standard_normal((2, 48000)) * 0.05).astype(np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(wave)).numpy()
    (got,) = session.run([OUTPUT_NAME], {"waveform": wave})
    np.testing.assert_allclose(got, expected, atol=2e-5)
