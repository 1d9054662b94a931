"""Tiny training runs: end to end (train -> evaluate -> export -> onnxruntime -> diarize) and resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def test_tiny_run_writes_model_checkpoint_and_curves(tiny_run) -> None:  # type: ignore[no-untyped-def]
    assert tiny_run.model_path is not None and tiny_run.model_path.is_file()
    assert tiny_run.steps_done == tiny_run.total_steps > 0
    out = tiny_run.out_dir
    assert (out / "checkpoint.pt").is_file()
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads((out / "curves.json").read_text())
    steps = [h for h in history if h["kind"] == "step"]
    epochs = [h for h in history if h["kind"] == "epoch"]
    assert len(steps) == tiny_run.total_steps
    assert epochs and all(0.0 <= h["val_eer"] <= 1.0 for h in epochs)
    assert all(np.isfinite(h["loss"]) for h in steps)


def test_interrupted_then_resumed_run_equals_uninterrupted(tiny_config, tiny_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pipelines.training.loop import train

    out = tmp_path / "resumed"
    first = train(tiny_config, out, max_steps=tiny_run.total_steps // 2 + 1, progress=False, log=lambda _m: None)
    assert first.model_path is None and (out / "checkpoint.pt").is_file()
    second = train(tiny_config, out, progress=False, log=lambda _m: None)
    assert second.model_path is not None

    a = torch.load(tiny_run.model_path, weights_only=False)["encoder"]
    b = torch.load(second.model_path, weights_only=False)["encoder"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key  # bit-identical: the run is deterministic and resumable
    hist_a = json.loads((tiny_run.out_dir / "curves.json").read_text())
    hist_b = json.loads((out / "curves.json").read_text())
    assert [h["loss"] for h in hist_a if h["kind"] == "step"] == [h["loss"] for h in hist_b if h["kind"] == "step"]


def test_resume_with_a_different_config_is_refused(tiny_config, tiny_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from pipelines.training.loop import train

    out = tmp_path / "other"
    train(tiny_config, out, max_steps=1, progress=False, log=lambda _m: None)
    with pytest.raises(ValueError, match="another config"):
        train(replace(tiny_config, lr=0.5), out, max_steps=2, progress=False, log=lambda _m: None)


def test_end_to_end_train_evaluate_export_diarize(tiny_run, shared_data: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pipelines.cli import _export  # the CLI handler, as the workflow step calls it
    from pipelines.evaluation.harness import evaluate_model, load_sets
    from voiceflow.embedding import EmbeddingModel
    from voiceflow.pipeline import Diarizer

    onnx_path = tmp_path / "student.onnx"
    import argparse

    rc = _export(
        argparse.Namespace(
            checkpoint=str(tiny_run.model_path),
            pretrained=None,
            out=str(onnx_path),
            quantize=None,
            streams=None,
            calibrate=True,
            background=True,
            plda=False,  # the PLDA fit at export has its own test (test_export_plda.py)
            data_root=None,
        )
    )
    assert rc == 0 and onnx_path.is_file()
    meta = json.loads(onnx_path.with_suffix(".json").read_text())
    assert meta["sha256"] and meta["training"]["config"]["name"] == "student-tiny"

    model = EmbeddingModel.load(onnx_path)
    emb = model.embed(np.zeros((2, 25600), np.float32) + 0.01)
    assert emb.shape == (2, 256)

    segments = Diarizer(embedding_model=model).diarize_file(shared_data / "ami-excerpts" / "dev00.wav")
    assert segments and all(s.end > s.start for s in segments)

    report = evaluate_model(onnx_path, sets=load_sets(["ami-dev"], data_dir=shared_data), speed_seconds=0.2)
    row = report["der"]["ami-dev"]
    assert 0.0 <= row["der"] <= 2.0 and 0.0 <= row["der_collar_0.25"] <= row["der"] + 1e-9
    assert report["speed"]["ms_per_window_b1"] > 0
    from pipelines.evaluation.machine import cpu

    assert report["machine"] == cpu()  # the CPU the figures were measured on, by name


def test_recurrent_student_trains_from_the_teacher_and_serves(tiny_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The recurrent recipe end to end: teacher init, teacher on the augmented batch, relational
    and per-step sequence losses, shared rooms -> model.pt -> ONNX -> the engine's EmbeddingModel."""
    from dataclasses import replace

    from pipelines.export.checkpoint import export_checkpoint
    from pipelines.training.loop import train
    from voiceflow.embedding import EmbeddingModel

    config = replace(
        tiny_config,
        name="student-lstm-tiny",
        lr=0.001,
        epochs=1,
        student=replace(tiny_config.student, arch="lstm", frame_stride=3, pooling="stack", init="teacher"),
        loss=replace(
            tiny_config.loss, teacher_input="augmented", relation_weight=10.0, sequence_weight=30.0, cls_weight=0.0
        ),
        augment=replace(tiny_config.augment, room_group=4),
        device="cpu",
    )
    messages: list[str] = []
    result = train(config, tmp_path / "run", progress=False, log=messages.append)
    assert result.model_path is not None
    assert any("initialised from GE2E" in m and "lstm.weight_hh_l2" in m for m in messages)
    history = json.loads((tmp_path / "run" / "curves.json").read_text())
    steps = [h for h in history if h["kind"] == "step"]
    assert steps and all(np.isfinite(h["relation"]) for h in steps)
    # the per-step hint loss is live (a student at a third of GE2E's frame rate cannot match it exactly)
    assert all(0.0 < h["sequence"] < 1.0 for h in steps)
    # starting from the teacher, the student is already close to it on held-out speakers
    assert result.metrics["val_cos"] > 0.55, result.metrics
    onnx_path = export_checkpoint(result.model_path, tmp_path / "student.onnx").path
    emb = EmbeddingModel.load(onnx_path).embed(
        np.random.default_rng(0).standard_normal((2, 25600)).astype(np.float32) * 0.05
    )
    assert emb.shape == (2, 256) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)


def test_a_denser_ami_grid_adds_meeting_crops_only(tiny_config) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from pipelines.training.data import build_dataset

    def counts(data_config) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        dataset = build_dataset(data_config, 0)
        ami = sum(1 for c in dataset.train if dataset.utterances[c.utterance].speaker is None)
        return len(dataset.train) - ami, ami

    base = replace(tiny_config.data, max_crops_per_utterance=None)
    books, meetings = counts(base)
    dense_books, dense_meetings = counts(replace(base, ami_hop_seconds=base.crop_hop_seconds / 4))
    assert dense_books == books and meetings > 0
    assert 3 * meetings <= dense_meetings <= 4 * meetings + 4
