"""`voiceflow train --preset segmentation-tiny` and `voiceflow export` end to end, in process.

The run is interrupted (--max-steps, 2 batch workers) and resumed (no workers): it must end
with the weights of an uninterrupted library run, so neither resuming nor the worker count
changes training. Then the exported ONNX runs in onnxruntime with its metadata beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.segmentation.config import load_preset
from pipelines.segmentation.train import train
from voiceflow_cli.main import main

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seg-cli")
    args = ["train", "--preset", "segmentation-tiny", "--out", str(out), "--no-progress", "--threads", "1"]
    assert main([*args, "--max-steps", "41", "--workers", "2"]) == 0
    assert not (out / "model.pt").exists() and (out / "checkpoint.pt").exists()
    assert main([*args, "--workers", "0"]) == 0
    return out


def test_cli_run_resumes_to_the_uninterrupted_weights(cli_run: Path, tmp_path: Path) -> None:
    reference = train(load_preset("segmentation-tiny"), tmp_path, progress=False, log=lambda _m: None)
    assert reference.model_path is not None
    a = torch.load(reference.model_path, weights_only=False)
    b = torch.load(cli_run / "model.pt", weights_only=False)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for name in ("curves.json", "curves.png", "train_summary.json"):
        assert (cli_run / name).is_file(), name
    vals = [h for h in json.loads((cli_run / "curves.json").read_text()) if h["kind"] == "val"]
    assert {"val_loss", "val_seg_error", "val_overlap_recall", "val_overlap_precision"} <= set(vals[-1])
    assert vals[-1]["val_seg_error"] < vals[0]["val_seg_error"]


def test_cli_export_writes_onnx_and_metadata(cli_run: Path) -> None:
    import onnxruntime as ort

    out = cli_run / "seg.onnx"
    assert main(["export", str(cli_run / "model.pt"), "--out", str(out)]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["kind"] == "segmentation" and meta["classes"] == 7 and meta["frame_samples"] == 320
    assert meta["version"] == f"segmentation-tiny-{meta['sha256'][:12]}"
    assert meta["chunk_seconds"] == 3.0 and meta["max_speakers"] == 3 and meta["max_simultaneous"] == 2
    assert meta["parameters"] > 0 and meta["config"]["name"] == "segmentation-tiny" and "git_commit" in meta
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(out), options, providers=["CPUExecutionProvider"])
    wave = (np.random.default_rng(0).standard_normal((1, 48000)) * 0.05).astype(np.float32)
    (log_probs,) = session.run(None, {"waveform": wave})
    assert log_probs.shape == (1, 150, 7)
    np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, atol=1e-4)
    assert main(["export", str(cli_run / "model.pt"), "--out", str(out), "--quantize", "int8"]) == 2


def test_segmentation_only_options_are_refused_for_the_student(tmp_path: Path) -> None:
    args = ["train", "--preset", "tiny", "--out", str(tmp_path), "--steps", "3"]
    assert main(args) == 2
    seg = ["train", "--preset", "segmentation-tiny", "--out", str(tmp_path), "--epochs", "3"]
    assert main(seg) == 2


def test_config_file_with_kind_segmentation_dispatches(tmp_path: Path) -> None:
    from pipelines.segmentation.config import PRESETS_DIR

    config = tmp_path / "seg.yaml"
    config.write_text("kind: segmentation\n" + (PRESETS_DIR / "tiny.yaml").read_text())
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(out), "--no-progress", "--max-steps", "1"]) == 0
    assert (out / "checkpoint.pt").is_file()
