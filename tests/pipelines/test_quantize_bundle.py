"""`voiceflow export BUNDLE.onnx --quantize int8`: an exported float bundle to its INT8 bundle,
background mean and PLDA refitted on the INT8 model, and every way to ask for it wrongly refused."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from pipelines.training.student import StudentSpec
from tests.pipelines.test_export import speechlike, write_student_checkpoint
from tests.pipelines.test_export_plda import tiny_training_data
from voiceflow.bundle import verify_bundle, write_index
from voiceflow.embedding import EmbeddingModel

LSTM_SPEC = StudentSpec(arch="lstm", frame_stride=2, lstm_layers=3, lstm_hidden=64, pooling="mean")


@pytest.fixture(scope="module")
def float_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from voiceflow_cli.main import main

    root = tmp_path_factory.mktemp("quantize")
    data = tiny_training_data(root / "data")
    checkpoint = write_student_checkpoint(root / "model.pt", LSTM_SPEC)
    state = torch.load(checkpoint, weights_only=False)
    state["config"]["data"]["data_root"] = str(data)
    torch.save(state, checkpoint)
    out = root / "float" / "student.onnx"
    out.parent.mkdir()
    assert main(["export", str(checkpoint), "--out", str(out)]) == 0
    return out


def export(*argv: str) -> int:
    from voiceflow_cli.main import main

    return main(["export", *argv])


def test_the_int8_bundle_is_sealed_with_its_own_parts(
    float_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "student-int8.onnx"
    assert export(str(float_bundle), "--quantize", "int8", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    bundle = verify_bundle(out)
    assert bundle.roles == ["background", "metadata", "model", "plda"] and bundle.digest in printed
    source = json.loads(float_bundle.with_suffix(".json").read_text())
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["quantization"] == "int8" and meta["quantized_from"]["sha256"] == source["sha256"]
    assert meta["sha256"] == bundle.parts["model"].sha256 and meta["version"].startswith(f"{source['name']}-int8-")
    assert meta["plda"]["built"] and "calibration" not in meta
    # the first LSTM (it reads the front end's mel power) stays float, the later ones are INT8
    ops = Counter(n.op_type for n in onnx.load(str(out)).graph.node)
    assert ops["LSTM"] == 1 and ops["DynamicQuantizeLSTM"] == 2
    windows = speechlike(2, 25600, seed=3)
    assert EmbeddingModel.load(out).embed(windows).shape == EmbeddingModel.load(float_bundle).embed(windows).shape


def test_the_int8_background_is_the_float_ones_moved_by_quantization(float_bundle: Path, tmp_path: Path) -> None:
    # A stored mean may come from other audio than a recomputed one (training stores its own): the
    # INT8 copy keeps the float bundle's, plus the small shift quantization makes on the training audio.
    source = tmp_path / "float"
    source.mkdir()
    for part in float_bundle.parent.iterdir():
        (source / part.name).write_bytes(part.read_bytes())
    stored = source / float_bundle.with_suffix(".background.npy").name
    marked = np.load(stored) + 5.0  # far from anything recomputed
    np.save(stored, marked)
    write_index(source / float_bundle.name)
    out = tmp_path / "q.onnx"
    assert export(str(source / float_bundle.name), "--quantize", "int8", "--out", str(out)) == 0
    int8_mean = np.load(out.with_suffix(".background.npy"))
    assert not np.array_equal(int8_mean, marked)  # moved by quantization ...
    assert np.linalg.norm(int8_mean - marked) < 0.1 * np.linalg.norm(np.full_like(marked, 5.0))  # ... not replaced


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ((), "only re-exported as --quantize int8"),
        (("--quantize", "int8", "--streams", "3"), "no --streams"),
        (("--quantize", "int8", "--no-plda"), "no --no-plda"),
    ],
)
def test_a_bundle_is_only_re_exported_as_int8(
    float_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...], error: str
) -> None:
    out = tmp_path / "q.onnx"
    assert export(str(float_bundle), *extra, "--out", str(out)) == 2
    assert error in capsys.readouterr().err and not out.exists()


def test_broken_or_unsuitable_sources_are_refused(
    float_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "q.onnx"
    assert export(str(tmp_path / "absent.onnx"), "--quantize", "int8", "--out", str(out)) == 2
    assert "absent.onnx" in capsys.readouterr().err
    assert export(str(float_bundle), "--quantize", "int8", "--out", str(float_bundle)) == 2
    assert "beside, not over" in capsys.readouterr().err
    assert export(str(float_bundle), "--quantize", "int8", "--out", str(out)) == 0
    capsys.readouterr()
    again = tmp_path / "twice.onnx"
    assert export(str(out), "--quantize", "int8", "--out", str(again)) == 2
    assert "already quantized" in capsys.readouterr().err and not again.exists()
    # a bundle whose parts no longer match its index is never quantized
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for part in float_bundle.parent.iterdir():
        (tampered / part.name).write_bytes(part.read_bytes())
    background = tampered / float_bundle.with_suffix(".background.npy").name
    np.save(background, np.zeros(64, np.float32))
    assert export(str(tampered / float_bundle.name), "--quantize", "int8", "--out", str(tmp_path / "t.onnx")) == 2
    assert "background" in capsys.readouterr().err
