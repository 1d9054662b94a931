"""Per-frame export (`voiceflow export --streams K`) and the engine reading it in staggered streams."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.export.checkpoint import export_checkpoint, load_checkpoint, student_from_checkpoint
from pipelines.nn.frame_reader import FrameReader
from pipelines.nn.ge2e import GE2EEncoder
from pipelines.training.student import StudentSpec
from pipelines.training.student_lstm import PooledLSTMEncoder, copy_teacher_weights
from tests.pipelines.test_export import speechlike, write_student_checkpoint
from voiceflow.bundle import write_index
from voiceflow.embedding import EmbeddingModel, ModelError
from voiceflow.pipeline import DiarizationConfig, embed_plan, plan_windows, window_ends, window_samples
from voiceflow.staggered import segment_layout, serving_starts

STRIDE_ONE = StudentSpec(arch="lstm", frame_stride=1, lstm_layers=1, lstm_hidden=32)


GE2E_SPEC = StudentSpec(arch="lstm", frame_stride=1, lstm_layers=3, lstm_hidden=256)


def ge2e_as_student(path: Path, spec: StudentSpec = GE2E_SPEC) -> Path:
    """GE2E's own weights as a stride-1 recurrent student checkpoint (what staggered fine-tuning starts from)."""
    encoder = PooledLSTMEncoder(frame_stride=1, layers=3, hidden=256)
    copy_teacher_weights(encoder, GE2EEncoder.pretrained())
    torch.save(
        {
            "format": "voiceflow-student-1",
            "spec": spec.to_dict(),
            "stft": "conv",
            "encoder": encoder.state_dict(),
            "config": {"name": "ge2e-frames", "data": {"crop_seconds": 1.6}},
            "metrics": {},
        },
        path,
    )
    return path


def test_per_frame_export_matches_torch_and_its_last_frame_is_the_window_embedding(tmp_path: Path) -> None:
    checkpoint = write_student_checkpoint(tmp_path / "model.pt", STRIDE_ONE)
    result = export_checkpoint(checkpoint, tmp_path / "frames.onnx", streams=3)
    meta = json.loads((tmp_path / "frames.json").read_text())
    assert (meta["readout"], meta["streams"], meta["frame_hop_samples"]) == ("frames", 3, 160)
    model = EmbeddingModel.load(result.path)
    window_model = EmbeddingModel.load(export_checkpoint(checkpoint, tmp_path / "window.onnx").path)
    reader = FrameReader(student_from_checkpoint(load_checkpoint(checkpoint)))
    for batch, samples in ((1, 25600), (3, 38400), (2, 17000)):
        x = speechlike(batch, samples, seed=batch)
        with torch.no_grad():
            expected = reader(torch.from_numpy(x)).numpy()
        got = model.frames(x)
        assert got.shape == (batch, samples // 160 + 1, 256)
        np.testing.assert_allclose(got, expected, atol=2e-5)
        # read as a window model, a per-frame model gives the embedding after the whole window
        np.testing.assert_allclose(model.embed(x), window_model.embed(x), atol=2e-5)


@pytest.mark.parametrize(
    ("spec", "streams", "quantize", "error"),
    [
        (StudentSpec(arch="lstm", frame_stride=3, lstm_layers=1, lstm_hidden=32), 3, None, "stride-1"),
        (StudentSpec(channels=32, blocks=1), 3, None, "recurrent encoder"),
        (STRIDE_ONE, 1, None, "K >= 2"),
        (STRIDE_ONE, 3, "int8", "float export"),
    ],
)
def test_per_frame_exports_that_cannot_be_read_in_streams_are_refused(
    tmp_path: Path, spec: StudentSpec, streams: int, quantize: str | None, error: str
) -> None:
    checkpoint = write_student_checkpoint(tmp_path / "model.pt", spec)
    with pytest.raises(ValueError, match=error):
        export_checkpoint(checkpoint, tmp_path / "x.onnx", quantize, streams)


def test_a_window_model_claiming_streams_or_asked_for_frames_fails_clearly(tmp_path: Path) -> None:
    checkpoint = write_student_checkpoint(tmp_path / "model.pt", STRIDE_ONE)
    path = export_checkpoint(checkpoint, tmp_path / "window.onnx").path
    with pytest.raises(ModelError, match="no per-frame output"):
        EmbeddingModel.load(path).frames(speechlike(1, 25600))
    meta = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**meta, "streams": 3}))
    write_index(path)  # a sealed bundle whose metadata lies, not a corrupt one
    with pytest.raises(ModelError, match="per-frame output"):
        EmbeddingModel.load(path)


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({"streams": "3"}, "streams must be a whole number"),
        ({"streams": 3.5}, "streams must be a whole number"),
        ({"streams": True}, "streams must be a whole number"),
        ({"streams": 1}, "K >= 2"),
        ({"streams": 3, "segment_hop_samples": "9600"}, "segment_hop_samples must be a whole number"),
        ({"streams": 3, "segment_hop_samples": None}, "segment_hop_samples must be a whole number"),
        ({"streams": 3, "segment_hop_samples": -1}, "segment_hop_samples must be 0"),
        ({"streams": 3, "segment_hop_samples": 10**12}, "segment_hop_samples must be 0"),
        ({"segment_hop_samples": 9600}, "needs a staggered model"),
    ],
)
def test_a_staggered_reading_the_engine_cannot_follow_is_refused_at_load(
    tmp_path: Path, metadata: dict[str, object], error: str
) -> None:
    checkpoint = write_student_checkpoint(tmp_path / "model.pt", STRIDE_ONE)
    path = export_checkpoint(checkpoint, tmp_path / "frames.onnx", streams=3).path
    meta = json.loads(path.with_suffix(".json").read_text())
    meta.pop("streams")
    path.with_suffix(".json").write_text(json.dumps({**meta, **metadata}))
    write_index(path)
    with pytest.raises(ModelError, match=error):
        EmbeddingModel.load(path)


def test_a_trained_segment_hop_is_exported_with_its_streams_only(tmp_path: Path) -> None:
    spec = replace(STRIDE_ONE, streams=3, segment_hop_seconds=0.6)
    checkpoint = write_student_checkpoint(tmp_path / "model.pt", spec)
    model = EmbeddingModel.load(export_checkpoint(checkpoint, tmp_path / "hop.onnx").path)
    assert (model.streams, model.segment_hop) == (3, 9600)
    assert "segment_hop_samples" not in export_checkpoint(checkpoint, tmp_path / "k4.onnx", streams=4).metadata
    assert "segment_hop_samples" not in export_checkpoint(checkpoint, tmp_path / "w.onnx", streams=0).metadata


@pytest.mark.parametrize(("streams", "segment_hop"), [(3, 0), (3, 9600)])
def test_the_engine_reads_each_window_off_its_serving_segment(tmp_path: Path, streams: int, segment_hop: int) -> None:
    checkpoint = ge2e_as_student(
        tmp_path / "ge2e.pt", replace(GE2E_SPEC, streams=streams, segment_hop_seconds=segment_hop / 16000)
    )
    model = EmbeddingModel.load(export_checkpoint(checkpoint, tmp_path / "ge2e-frames.onnx").path)
    assert (model.streams, model.segment_hop) == (streams, segment_hop)
    audio = speechlike(1, 16000 * 9)[0]
    mask = np.ones(len(audio) // 512, dtype=bool)
    plan = plan_windows(mask, DiarizationConfig())
    got = embed_plan(model, audio, plan)
    ends = window_ends(len(audio), plan)
    length, hop = segment_layout(25600, streams, segment_hop)
    starts = serving_starts(ends, 25600, hop)
    for i in (0, len(ends) // 2, len(ends) - 1):  # the same frame, computed by hand
        frames = model.frames(audio[None, starts[i] : starts[i] + length])
        np.testing.assert_allclose(got[i], frames[0, (ends[i] - starts[i]) // 160], atol=1e-5)
    # a window whose segment starts where it starts differs from reading it alone only in the
    # 12.5 ms its last STFT frame sees past its end; with GE2E's weights that is invisible
    windowed = model.embed(window_samples(audio, plan))
    aligned = ends - starts == 25600
    assert aligned.sum() >= 2  # windows start on a 96 ms grid: aligned every 4.8 s (0.8 s hop), 2.4 s (0.6 s)
    assert float(np.min(np.sum(got[aligned] * windowed[aligned], axis=1))) > 0.99
    # the rest carry up to one hop of extra history: still close for GE2E's own weights
    assert float(np.mean(np.sum(got * windowed, axis=1))) > 0.8


def test_export_cli_streams_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from voiceflow_cli.main import main

    checkpoint = write_student_checkpoint(tmp_path / "model.pt", STRIDE_ONE)
    assert main(["export", str(checkpoint), "--out", str(tmp_path / "f.onnx"), "--streams", "3", "--no-plda"]) == 0
    assert EmbeddingModel.load(tmp_path / "f.onnx").streams == 3
    assert main(["export", "--pretrained", "ge2e", "--out", str(tmp_path / "g.onnx"), "--streams", "3"]) == 2
    assert "--streams apply to trained checkpoints" in capsys.readouterr().err


def test_speed_of_a_staggered_model_is_measured_the_way_the_engine_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.evaluation import speed
    from voiceflow import staggered

    checkpoint = write_student_checkpoint(tmp_path / "model.pt", STRIDE_ONE)
    path = export_checkpoint(checkpoint, tmp_path / "f.onnx", streams=3).path
    calls: list[int] = []
    real = staggered.read_staggered

    def counting(*args: object, **kwargs: object) -> np.ndarray:
        calls.append(len(args[2]))  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(staggered, "read_staggered", counting)
    report = speed.speed_report(path, seconds=0.01)
    assert report["ms_per_window_b1"] > 0 and report["ms_per_window_b32"] > 0
    assert calls and set(calls) == {(20 * 16000 - 25600) // 3200 + 1}  # every window of 20 s, each run
