"""Offline pipeline: pure helpers, and the end-to-end DER regression gate on a real meeting."""

from pathlib import Path

import numpy as np
import pytest

from voiceflow.pipeline import (
    DiarizationConfig,
    Diarizer,
    absorb_short_turns,
    labels_from_votes,
    plan_windows,
    window_votes,
)
from voiceflow.rttm import read_rttm, read_uem
from voiceflow.scoring import score_der

DATA = Path(__file__).resolve().parents[1] / "data"
ROOT = Path(__file__).resolve().parents[2]


def test_plan_windows_covers_short_isolated_speech() -> None:
    mask = np.zeros(400, dtype=bool)
    mask[100:110] = True  # 0.32 s of speech, far shorter than a window
    plan = plan_windows(mask, DiarizationConfig())
    assert len(plan.starts) >= 1
    covered = np.zeros(400, dtype=bool)
    for s in plan.starts:
        covered[s : s + plan.frames_per_window] = True
    assert covered[100:110].all()


def test_frame_labels_from_window_votes_and_short_turns() -> None:
    mask = np.ones(100, dtype=bool)
    mask[50:55] = False
    plan = plan_windows(mask, DiarizationConfig(window_seconds=0.64, step_seconds=0.32))
    labels = np.array([0 if s < 45 else 1 for s in plan.starts])
    frames = labels_from_votes(mask, window_votes(len(mask), plan, labels, 2))
    assert (frames[50:55] == -1).all() and frames[0] == 0 and frames[-1] == 1
    assert list(absorb_short_turns(np.array([0, 0, 0, 0, 1, 0, 0, 0]), 2)) == [0] * 8


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        DiarizationConfig(window_seconds=0.1)
    with pytest.raises(ValueError):
        DiarizationConfig(min_window_speech=2.0)


def test_silence_gives_no_segments(embedding_model) -> None:  # type: ignore[no-untyped-def]
    assert Diarizer(embedding_model=embedding_model).diarize(np.zeros(16000 * 3, dtype=np.float32)) == []


def test_der_regression_gate_on_ami_dev00(embedding_model) -> None:  # type: ignore[no-untyped-def]
    """AMI dev00 (committed in tests/data): measured 2026-11-25 at ~31% DER (collar 0) — gate at 40%."""
    hyp = Diarizer(embedding_model=embedding_model).diarize_file(DATA / "dev00.wav")
    report = score_der(read_rttm(DATA / "dev00.rttm"), {"dev00": hyp}, read_uem(DATA / "dev00.uem"))
    assert len({s.speaker for s in hyp}) >= 2
    assert report.der < 0.40, report.component_rates()


def test_der_regression_gate_on_bundled_sample(embedding_model) -> None:  # type: ignore[no-untyped-def]
    sample = ROOT / "voiceflow" / "samples"
    hyp = Diarizer(embedding_model=embedding_model).diarize_file(sample / "conversation.wav")
    report = score_der(read_rttm(sample / "conversation.rttm"), {"conversation": hyp}, {"conversation": [(0, 30)]})
    assert report.der < 0.25, report.component_rates()


def test_packaged_default_pointer_is_honoured_only_when_intact(tmp_path: Path) -> None:
    import json

    from voiceflow.embedding import DEFAULT_MODEL, file_sha256, packaged_default_model

    pointer = tmp_path / "default.json"
    assert packaged_default_model(pointer) == DEFAULT_MODEL
    model = tmp_path / "student.onnx"
    model.write_bytes(DEFAULT_MODEL.read_bytes())
    pointer.write_text(json.dumps({"model": "student.onnx", "sha256": file_sha256(model)}))
    assert packaged_default_model(pointer) == model
    pointer.write_text(json.dumps({"model": "student.onnx", "sha256": "0" * 64}))
    assert packaged_default_model(pointer) == DEFAULT_MODEL
    pointer.write_text("{broken")
    assert packaged_default_model(pointer) == DEFAULT_MODEL
    pointer.write_text(json.dumps({"model": "../../etc/passwd", "sha256": "x"}))
    assert packaged_default_model(pointer) == DEFAULT_MODEL


def test_lazy_windows_cut_the_same_windows_batch_by_batch() -> None:
    from voiceflow.pipeline import LazyWindows, WindowPlan, window_samples

    audio = np.random.default_rng(3).standard_normal(16000 * 4).astype(np.float32)
    plan = WindowPlan(np.array([0, 5, 17, 40, 75]), 50)
    lazy = LazyWindows(audio, plan)
    assert len(lazy) == 5
    np.testing.assert_array_equal(np.concatenate([lazy[0:2], lazy[2:5]]), window_samples(audio, plan))
