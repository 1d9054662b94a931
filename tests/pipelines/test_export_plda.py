"""`voiceflow export` fits the model's PLDA into its bundle when the training audio is there, and
says so (and records AHC in the metadata every manifest carries) when it is not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from pipelines.evaluation.manifest import build_manifest
from tests.pipelines.test_export import speechlike, write_student_checkpoint
from voiceflow.bundle import verify_bundle
from voiceflow.clustering.plda import optional_model_plda
from voiceflow.embedding import EmbeddingModel


def tiny_training_data(root: Path, speakers: int = 6, seconds: float = 4.0) -> Path:
    """LibriSpeech-shaped training audio (one utterance per speaker id; every 5th id is held
    out: 6 ids leave 4), one noise file and one room: enough for a small PLDA in seconds."""
    voices = root / "librispeech-train-clean-100"
    voices.mkdir(parents=True)
    for i in range(speakers):
        sf.write(voices / f"{100 + i}-1-0000.flac", speechlike(1, int(16000 * seconds), seed=10 + i)[0], 16000)
    (root / "augmentation" / "noise").mkdir(parents=True)
    (root / "augmentation" / "rir").mkdir(parents=True)
    rng = np.random.default_rng(0)
    sf.write(root / "augmentation" / "noise" / "hum.wav", 0.05 * rng.standard_normal(16000).astype(np.float32), 16000)
    rir = np.exp(-np.arange(3200) / 400.0) * rng.standard_normal(3200)
    rir[0] = 1.0
    sf.write(root / "augmentation" / "rir" / "room.wav", rir.astype(np.float32), 16000)
    return root


def checkpoint_on(tmp_path: Path, data: Path) -> Path:
    """A small student whose config names `data` (its background mean comes from there too)."""
    checkpoint = write_student_checkpoint(tmp_path / "model.pt")
    state = torch.load(checkpoint, weights_only=False)
    state["config"]["data"]["data_root"] = str(data)
    torch.save(state, checkpoint)
    return checkpoint


def test_export_builds_and_seals_the_plda(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from voiceflow_cli.main import main

    data = tiny_training_data(tmp_path / "data")
    out = tmp_path / "candidate.onnx"
    assert main(["export", str(checkpoint_on(tmp_path, data)), "--out", str(out)]) == 0
    assert "PLDA built from 12 training pseudo-speakers" in capsys.readouterr().out  # 4 voices x 3 speeds
    bundle = verify_bundle(out)  # sealed after the PLDA and the metadata that records it
    assert bundle.roles == ["background", "metadata", "model", "plda"]
    record = json.loads(out.with_suffix(".json").read_text())["plda"]
    assert record["built"] and record["clustering"] == "vbx" and record["pseudo_speakers"] == 12
    model = EmbeddingModel.load(out)
    plda = optional_model_plda(model)
    assert plda is not None and plda.input_dim == model.dimension


def test_export_without_training_audio_says_so_and_records_ahc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from voiceflow_cli.main import main

    data = tiny_training_data(tmp_path / "data")
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "candidate.onnx"
    checkpoint = checkpoint_on(tmp_path, data)
    assert main(["export", str(checkpoint), "--out", str(out), "--data-root", str(empty)]) == 0
    err = capsys.readouterr().err
    assert "no PLDA" in err and "AHC" in err and "build_plda" in err
    assert verify_bundle(out).roles == ["background", "metadata", "model"]
    assert optional_model_plda(EmbeddingModel.load(out)) is None
    # the gate's manifest carries the model's metadata: a reader sees the candidate ran AHC, and why
    record = build_manifest(out)["model"]["metadata"]["plda"]
    assert not record["built"] and record["clustering"] == "ahc" and str(empty) in record["reason"]
    # --no-plda skips the fit even with the audio there (and records nothing)
    assert main(["export", str(checkpoint), "--out", str(out), "--no-plda"]) == 0
    assert "plda" not in json.loads(out.with_suffix(".json").read_text())
    assert verify_bundle(out).roles == ["background", "metadata", "model"]
