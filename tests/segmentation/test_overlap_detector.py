"""The overlap-detector task (0 / 1 / 2+ speakers): targets, loss, fine-tuning from a segmentation
network, export, and the engine running it as the embedding pipeline's detector."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.segmentation.config import load_preset
from pipelines.segmentation.count import count_loss, count_metrics, count_targets
from pipelines.segmentation.model import SegmentationSpec
from pipelines.segmentation.train import initialise_from, train
from voiceflow_cli.main import main

torch.set_num_threads(1)
BUNDLED = Path(__file__).resolve().parents[2] / "voiceflow" / "models" / "segmentation.onnx"
WEIGHTS = Path(__file__).resolve().parents[2] / "pipelines" / "segmentation" / "weights" / "segmentation-full.pt"


def test_count_targets_clip_at_two_and_the_loss_is_plain_cross_entropy() -> None:
    labels = torch.tensor([[[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]]], dtype=torch.float32)
    assert count_targets(labels).tolist() == [[0, 1, 2, 2]]
    perfect = torch.log(torch.nn.functional.one_hot(count_targets(labels), 3).float().clamp(min=1e-9))
    assert count_loss(perfect, labels).item() < 1e-6
    uniform = torch.log(torch.full((1, 4, 3), 1 / 3))
    assert count_loss(uniform, labels).item() == pytest.approx(np.log(3), rel=1e-5)
    scores = count_metrics(np.array([[0, 2, 2, 1]]), np.array([[0, 1, 2, 2]]))
    assert scores == {"count_error": 0.5, "overlap_recall": 0.5, "overlap_precision": 0.5}
    with pytest.raises(ValueError):
        SegmentationSpec(task="diarize")


def test_shipped_weights_export_to_the_bundled_network() -> None:
    # The preset's starting point is the bundled model itself: same weights, same ONNX bytes.
    import tempfile

    from pipelines.segmentation.export import export_segmentation_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        result = export_segmentation_checkpoint(WEIGHTS, Path(tmp) / "seg.onnx")
        assert (Path(tmp) / "seg.onnx").read_bytes() == BUNDLED.read_bytes(), result


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("powerset")
    powerset = train(load_preset("segmentation-tiny"), base, progress=False, log=lambda _m: None)
    assert powerset.model_path is not None
    tiny = load_preset("segmentation-tiny")
    config = replace(
        tiny, name="overlap-tiny", steps=30, init_from=str(powerset.model_path), model=replace(tiny.model, task="count")
    )
    out = tmp_path_factory.mktemp("detector")
    result = train(config, out, progress=False, log=lambda _m: None)
    assert result.model_path is not None
    return result.model_path


def test_detector_starts_from_the_segmentation_weights_and_learns(tiny_detector: Path) -> None:
    history = json.loads((tiny_detector.parent / "curves.json").read_text())
    vals = [h for h in history if h["kind"] == "val"]
    assert {"val_loss", "val_count_error", "val_overlap_recall", "val_overlap_precision"} <= set(vals[-1])
    assert vals[-1]["val_loss"] < vals[0]["val_loss"]
    from pipelines.segmentation.model import SegmentationModel

    spec = SegmentationSpec(channels=32, lstm_hidden=32, lstm_layers=1, head_hidden=32, task="count")
    fresh = SegmentationModel(spec)
    left = initialise_from(fresh, tiny_detector)
    assert left == ["all tensors"]
    with pytest.raises(ValueError):
        initialise_from(fresh, tiny_detector.parent / "missing.pt")


def test_engine_runs_the_exported_detector(tiny_detector: Path) -> None:
    from voiceflow.segmentation.model import SegmentationModel as Runtime

    out = tiny_detector.parent / "overlap.onnx"
    assert main(["export", str(tiny_detector), "--out", str(out)]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["task"] == "count" and meta["classes"] == 3
    detector = Runtime.load(out)
    counts = detector.count((np.random.default_rng(0).standard_normal((2, 48000)) * 0.05).astype(np.float32))
    assert counts.shape == (2, 150) and set(np.unique(counts)) <= {0, 1, 2}
    with pytest.raises(ValueError):
        detector.activity(np.zeros((1, 48000), dtype=np.float32))
