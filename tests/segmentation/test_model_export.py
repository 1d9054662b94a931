"""The segmentation network's shapes and its ONNX export (torch vs onnxruntime parity)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.segmentation.export import OUTPUT_NAME, export_segmentation_model
from pipelines.segmentation.model import SegmentationModel, SegmentationSpec, num_frames, parameter_count

torch.set_num_threads(1)


def build(seed: int = 0) -> SegmentationModel:
    torch.manual_seed(seed)
    return SegmentationModel(SegmentationSpec()).eval()


def test_size_and_shapes() -> None:
    model = build()
    assert 100_000 < parameter_count(model) < 1_000_000  # "a few hundred thousand"
    with torch.inference_mode():
        out = model(torch.randn(2, 80000) * 0.1)
    assert out.shape == (2, 250, 7)  # 5 s -> 250 frames of 20 ms, 7 powerset classes
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(2, 250))
    assert num_frames(80000) == 250
    for samples in (16000, 16001, 16159, 16160, 32000 + 480):
        with torch.inference_mode():
            assert model(torch.zeros(1, samples)).shape[1] == num_frames(samples)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[SegmentationModel, Path, str]:
    model = build(3)
    path = tmp_path_factory.mktemp("seg") / "segmentation.onnx"
    return model, path, export_segmentation_model(model, path)


def test_export_is_deterministic(exported: tuple[SegmentationModel, Path, str], tmp_path: Path) -> None:
    model, _, sha = exported
    assert export_segmentation_model(model, tmp_path / "again.onnx") == sha


@pytest.mark.parametrize(("batch", "seconds"), [(1, 5.0), (3, 5.0), (2, 2.0), (1, 7.3)])
def test_onnxruntime_matches_torch(exported: tuple[SegmentationModel, Path, str], batch: int, seconds: float) -> None:
    import onnxruntime as ort

    model, path, _ = exported
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(batch)
    wave = (rng.standard_normal((batch, int(16000 * seconds))) * 0.05).astype(np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(wave)).numpy()
    (got,) = session.run([OUTPUT_NAME], {session.get_inputs()[0].name: wave})
    assert got.shape == expected.shape == (batch, num_frames(wave.shape[1]), 7)
    np.testing.assert_allclose(got, expected, atol=2e-5)  # measured ~2.4e-7
