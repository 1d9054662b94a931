"""Fixtures of the pod tests (helpers live in pod_support.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pod_support import RunningPod, running_pod


@pytest.fixture(scope="module")
def pod() -> Iterator[RunningPod]:
    """A pod with default limits except a fast idle timeout and generous pacing for file streaming."""
    with running_pod(idle_timeout_seconds=3.0, max_realtime_factor=50.0, realtime_burst_seconds=60.0) as p:
        yield p


@pytest.fixture(scope="session")
def segmentation_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained segmentation model, exported to ONNX with its `.json` sidecar.

    Its last layer is scaled up so its argmax class changes with the input: it says "speech",
    "overlap" and "silence" often enough (nonsense, but deterministic) to exercise overlapping
    segments end to end. Tests never depend on a trained model under runs/.
    """
    import torch

    from pipelines.segmentation.export import export_segmentation_model
    from pipelines.segmentation.model import SegmentationModel, SegmentationSpec

    torch.set_num_threads(1)
    torch.manual_seed(0)
    module = SegmentationModel(SegmentationSpec(channels=16, lstm_hidden=16, lstm_layers=1, head_hidden=16)).eval()
    with torch.no_grad():
        module.head[-1].weight.mul_(30.0)
    path = tmp_path_factory.mktemp("segmentation") / "segmentation.onnx"
    export_segmentation_model(module, path)
    meta = {"kind": "segmentation", "version": "seg-test", "max_speakers": 3, "max_simultaneous": 2}
    path.with_suffix(".json").write_text(json.dumps({**meta, "chunk_seconds": 5.0, "frame_samples": 320}))
    return path
