"""Export: GE2E reproduces the bundled file, students match torch in onnxruntime, INT8 works."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from pipelines.export.checkpoint import export_checkpoint, load_checkpoint, student_from_checkpoint
from pipelines.nn.frontend import MelFrontend
from pipelines.training.student import StudentSpec
from voiceflow.bundle import verify_bundle
from voiceflow.embedding import EmbeddingModel

REPO = Path(__file__).resolve().parents[2]


def speechlike(batch: int, samples: int, seed: int = 0) -> np.ndarray:
    """Amplitude-modulated harmonics + noise: exercises the front end like voiced speech would."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000
    out = []
    for _ in range(batch):
        f0 = rng.uniform(90, 250)
        tone = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 8))
        env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 5) * t)
        out.append(0.05 * tone * env + 0.003 * rng.standard_normal(samples))
    return np.stack(out).astype(np.float32)


SMALL = StudentSpec(channels=32, blocks=1)


def write_student_checkpoint(path: Path, spec: StudentSpec = SMALL) -> Path:
    """A randomly initialised student saved in model.pt format (no training needed for export tests)."""
    from pipelines.training.loop import build_student

    torch.manual_seed(0)
    module = build_student(spec)
    # non-trivial batch-norm statistics, so export exercises them
    module.train()
    with torch.no_grad():
        module(torch.from_numpy(speechlike(8, 25600)))
    state = {
        "format": "voiceflow-student-1",
        "spec": spec.to_dict(),
        "stft": "conv",
        "encoder": module.encoder.state_dict(),
        "config": {"name": "student-test", "data": {"crop_seconds": 1.6}},
        "metrics": {},
    }
    torch.save(state, path)
    return path


def assert_onnx_matches_torch(checkpoint: Path, onnx_path: Path, shapes: list[tuple[int, int]]) -> None:
    """The exported file computes what the checkpoint's torch module computes, for every (batch, samples)."""
    module = student_from_checkpoint(load_checkpoint(checkpoint))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for batch, samples in shapes:
        x = speechlike(batch, samples, seed=batch)
        with torch.no_grad():
            expected = module(torch.from_numpy(x)).numpy()
        got = session.run(None, {"waveform": x})[0]
        assert got.shape == (batch, 256)
        np.testing.assert_allclose(got, expected, atol=2e-5)


def test_conv_frontend_matches_stft_frontend() -> None:
    x = torch.from_numpy(speechlike(3, 25600))
    ref = MelFrontend(stft="op")(x)
    conv = MelFrontend(stft="conv")(x)
    assert ref.shape == conv.shape
    assert float((ref - conv).abs().max() / ref.abs().max()) < 1e-5


@pytest.mark.slow
def test_export_pretrained_ge2e_reproduces_bundled_model(tmp_path: Path) -> None:
    from voiceflow_cli.main import main

    out = tmp_path / "ge2e.onnx"
    assert main(["export", "--pretrained", "ge2e", "--out", str(out)]) == 0
    bundled = REPO / "voiceflow" / "models" / "ge2e.onnx"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(bundled.read_bytes()).hexdigest()
    assert json.loads(out.with_suffix(".json").read_text()) == json.loads(bundled.with_suffix(".json").read_text())


@pytest.mark.parametrize("input_norm", ["cmn", "batch"])
def test_student_export_matches_torch_with_dynamic_axes(tmp_path: Path, input_norm: str) -> None:
    ckpt = write_student_checkpoint(tmp_path / "model.pt", StudentSpec(channels=32, blocks=1, input_norm=input_norm))
    result = export_checkpoint(ckpt, tmp_path / "student.onnx")
    onnx.checker.check_model(onnx.load(str(result.path)))
    assert_onnx_matches_torch(ckpt, result.path, [(1, 25600), (5, 25600), (3, 40000), (2, 9000)])
    assert result.metadata["sha256"] == result.sha256 == hashlib.sha256(result.path.read_bytes()).hexdigest()


def test_student_export_is_deterministic(tmp_path: Path) -> None:
    ckpt = write_student_checkpoint(tmp_path / "model.pt")
    a = export_checkpoint(ckpt, tmp_path / "a.onnx")
    b = export_checkpoint(ckpt, tmp_path / "b.onnx")
    assert a.sha256 == b.sha256
    # Each export is a sealed bundle with its background mean (computed from the training audio
    # its config names, as the checkpoint carries none), identical from run to run.
    bundle = verify_bundle(a.path)
    assert bundle.indexed and bundle.roles == ["background", "metadata", "model"]
    assert a.bundle_digest == bundle.digest == b.bundle_digest
    assert EmbeddingModel.load(a.path).background_mean is not None


def test_export_bundles_the_background_the_checkpoint_stored(tmp_path: Path) -> None:
    ckpt = write_student_checkpoint(tmp_path / "model.pt")
    state = torch.load(ckpt, weights_only=False)
    stored = np.linspace(-1, 1, int(state["spec"].get("embedding_dim", 256))).astype(np.float32)
    torch.save({**state, "background_mean": stored.tolist()}, ckpt)
    (tmp_path / "out.manifest.json").write_text("{}")  # a stale sidecar of an earlier export
    result = export_checkpoint(ckpt, tmp_path / "out.onnx")
    assert np.array_equal(np.load(tmp_path / "out.background.npy"), stored)
    assert verify_bundle(result.path).roles == ["background", "metadata", "model"]


def test_int8_export_is_smaller_and_close_to_float(tmp_path: Path) -> None:
    ckpt = write_student_checkpoint(tmp_path / "model.pt", StudentSpec(channels=64, blocks=2, input_norm="batch"))
    result = export_checkpoint(ckpt, tmp_path / "student.int8.onnx", quantize="int8")
    float_path = tmp_path / "student.int8.fp32.onnx"
    assert float_path.is_file() and result.metadata["quantization"] == "int8"
    # the float front end (DFT + mel matrices, ~0.65 MB) is kept on purpose; the encoder shrinks ~4x
    assert result.path.stat().st_size < 0.8 * float_path.stat().st_size
    graph = onnx.load(str(result.path)).graph
    ops = {n.op_type for n in graph.node}
    assert ops & {"ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"}
    assert "STFT" not in ops and any(n.op_type == "Conv" and n.name.startswith("/frontend/") for n in graph.node)
    x = speechlike(4, 25600)
    q = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"]).run(None, {"waveform": x})[0]
    f = ort.InferenceSession(str(float_path), providers=["CPUExecutionProvider"]).run(None, {"waveform": x})[0]
    cos = np.sum(q * f, axis=1) / (np.linalg.norm(q, axis=1) * np.linalg.norm(f, axis=1))
    assert cos.min() > 0.98


def test_export_cli_rejects_ambiguous_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from voiceflow_cli.main import main

    assert main(["export", "--out", str(tmp_path / "x.onnx")]) == 2
    assert "CHECKPOINT" in capsys.readouterr().err
