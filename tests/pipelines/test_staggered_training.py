"""`student.streams`: training a recurrent model for the engine's staggered reading, and the preset that ships it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.nn.frame_reader import FrameReader
from pipelines.training.config import TrainConfig, load_config, load_preset
from pipelines.training.loop import build_student
from pipelines.training.staggered import StaggeredReading, check_staggered
from pipelines.training.student import StudentSpec
from tests.pipelines.test_export import speechlike
from voiceflow.staggered import frame_index, segment_layout, serving_starts

# Research recipes live outside the package (research/presets), read by `voiceflow train --config`.
ABLATIONS_DIR = Path(__file__).resolve().parents[2] / "research" / "presets" / "ablations"

WINDOW = 25600


def staggered_config(**student: object) -> TrainConfig:
    base = load_preset("full")
    return replace(base, student=replace(base.student, **student))  # type: ignore[arg-type]


def test_full_preset_trains_ge2e_for_segments_every_0_6_s_anchored_to_its_weights() -> None:
    config = load_preset("full")
    reading = StaggeredReading.from_config(config)
    assert reading is not None and (reading.window, reading.segment) == (WINDOW, WINDOW + 9600)
    assert config.student.init == "teacher" and config.student.lstm_hidden == 256  # GE2E's own network
    assert config.loss.anchor_weight > 0
    assert not config.data.ami_files and len(config.data.calibration_ami_files) == 10  # every meeting unheard
    assert reading.data_config(config.data).crop_seconds == 2.2  # a training crop is a whole segment
    k3 = StaggeredReading.from_config(load_config(ABLATIONS_DIR / "staggered-k3.yaml"))
    assert k3 is not None and k3.segment == 38400  # the 3-stream recipe it replaced
    assert StaggeredReading.from_config(load_preset("tiny")) is None


def test_training_window_ends_are_exactly_those_the_engine_reads_off_a_segment() -> None:
    reading = StaggeredReading(WINDOW, 3, segment_layout(WINDOW, 3)[0])
    _, hop = segment_layout(WINDOW, 3)
    ends = reading.serving_ends()
    for start in (0, hop, 7 * hop):
        # every trained end is served by this segment, and the next end after them by the next one
        assert (serving_starts(start + ends, WINDOW, hop) == start).all()
        assert serving_starts(np.array([start + ends[-1] + 160]), WINDOW, hop)[0] == start + hop
    assert len(ends) == 80 and ends[0] == WINDOW
    drawn = reading.draw_ends(np.random.default_rng(0), 6)
    assert len(set(drawn)) == 6 and np.isin(drawn, ends).all() and (np.diff(drawn) > 0).all()


def test_readouts_and_teacher_windows_line_up_segment_by_end() -> None:
    reading = StaggeredReading(WINDOW, 3, 38400)
    torch.manual_seed(0)
    model = build_student(StudentSpec(arch="lstm", frame_stride=1, lstm_layers=1, lstm_hidden=32)).eval()
    wave = torch.from_numpy(speechlike(2, 38400))
    ends = np.array([WINDOW, 30000 // 160 * 160, 38240])
    with torch.no_grad():
        readouts = reading.readouts(model, wave, ends)
        frames = FrameReader(model)(wave)
    windows = reading.windows(wave, ends)
    assert readouts.shape == (6, 256) and windows.shape == (6, WINDOW)
    index = frame_index(ends, 160, frames.shape[1])
    for b in range(2):
        for j, end in enumerate(ends):
            row = b * len(ends) + j
            torch.testing.assert_close(readouts[row], frames[b, index[j]])
            torch.testing.assert_close(windows[row], wave[b, end - WINDOW : end])


def test_a_named_segment_hop_lays_out_segments_of_window_plus_hop() -> None:
    reading = StaggeredReading.from_config(staggered_config(segment_hop_seconds=0.6))
    assert reading is not None and reading.segment == WINDOW + 9600  # 2.2 s every 0.6 s, 3.67 reads a frame
    ends = reading.serving_ends()
    assert (ends[0], ends[-1], len(ends)) == (WINDOW, WINDOW + 9600 - 160, 60)  # what the engine reads off one


def test_frame_index_is_the_frame_at_the_end_clamped_to_the_last() -> None:
    np.testing.assert_array_equal(frame_index(np.array([159, 160, 25600, 99999]), 160, 200), [0, 1, 160, 199])


@pytest.mark.parametrize(
    ("student", "loss", "error"),
    [
        ({"streams": 1}, {}, "at least 2"),
        ({"arch": "ecapa"}, {}, "frame_stride 1"),
        ({"frame_stride": 3}, {}, "frame_stride 1"),
        ({"conv_frontend": 64}, {}, "no conv_frontend"),
        ({}, {"teacher_input": "clean"}, "augmented"),
        ({}, {"centered_weight": 1.0}, "centered_weight"),
        ({}, {"sequence_weight": 1.0}, "sequence_weight"),
        ({"segment_hop_seconds": 0.0}, {"windows_per_segment": 0}, r"1\.\.80"),
        ({"segment_hop_seconds": 0.0}, {"windows_per_segment": 81}, r"1\.\.80"),
        ({"segment_hop_seconds": 0.6, "streams": 0}, {}, "needs student.streams"),
        ({"segment_hop_seconds": -0.1}, {}, "to the window"),
        ({"segment_hop_seconds": 1.7}, {}, "to the window"),
        ({"segment_hop_seconds": float("nan")}, {}, "to the window"),
        ({"segment_hop_seconds": 0.005}, {}, "at least one frame"),
        ({"segment_hop_seconds": 0.6}, {"windows_per_segment": 61}, r"1\.\.60"),
    ],
)
def test_configs_the_staggered_objective_cannot_train_are_refused(
    student: dict[str, object], loss: dict[str, object], error: str
) -> None:
    base = staggered_config(**student)
    config = replace(base, loss=replace(base.loss, **loss))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=error):
        check_staggered(config)
    with pytest.raises(ValueError, match=error):
        StaggeredReading.from_config(config)


@pytest.mark.shared
@pytest.mark.slow
def test_staggered_run_trains_resumes_exports_per_frame_and_serves(shared_data: Path, tmp_path: Path) -> None:
    """The shipped recipe, shrunk, in segments every 0.6 s and anchored to GE2E's weights: train ->
    calibrate -> interrupt -> resume (bit-identical) -> export (per-frame by default, from the
    checkpoint's streams and segment hop, with its calibration) -> the engine's staggered embed plan."""
    from pipelines.export.checkpoint import export_checkpoint
    from pipelines.training.loop import train
    from voiceflow.embedding import EmbeddingModel
    from voiceflow.pipeline import FRAME_SECONDS, DiarizationConfig, embed_plan, plan_windows

    base = load_preset("full")
    config = replace(
        base,
        name="staggered-tiny",
        epochs=1,
        batch_size=4,
        cache_dir=str(tmp_path / "cache"),
        data=replace(
            base.data,
            data_root=str(shared_data),
            max_speakers=3,
            val_speakers=3,
            ami_files=["trn00"],  # one meeting in training too, unlike `full`, to cover both sources
            calibration_ami_files=["trn04", "trn07", "trn08"],
            max_crops_per_utterance=4,
        ),
        # GE2E's first layer only: fast, still teacher-initialised
        student=replace(base.student, lstm_layers=1, segment_hop_seconds=0.6),
        loss=replace(base.loss, windows_per_segment=3, anchor_weight=1e-3),
    )
    quiet = {"progress": False, "log": lambda _m: None}
    whole = train(config, tmp_path / "whole", **quiet)  # type: ignore[arg-type]
    assert whole.model_path is not None and whole.total_steps >= 3
    assert not (tmp_path / "cache").exists()  # targets are live windows, never the clean-crop cache
    history = json.loads((tmp_path / "whole" / "curves.json").read_text())
    steps = [h for h in history if h["kind"] == "step"]
    assert all(np.isfinite(h["loss"]) and h["centered"] == 0.0 and h["sequence"] == 0.0 for h in steps)
    # the first step's loss is taken at the anchor itself; every update moves the weights off it
    assert steps[0]["drift"] == 0.0 and all(h["drift"] > 0.0 for h in steps[1:])
    epoch = next(h for h in history if h["kind"] == "epoch")
    assert -1.0 <= epoch["val_cos"] <= 1.0 and 0.0 <= epoch["teacher_eer"] <= 1.0

    resumed = tmp_path / "resumed"
    assert train(config, resumed, max_steps=2, **quiet).model_path is None  # type: ignore[arg-type]
    again = train(config, resumed, **quiet)  # type: ignore[arg-type]
    assert again.model_path is not None
    a = torch.load(whole.model_path, weights_only=False)
    b = torch.load(again.model_path, weights_only=False)
    for key in a["encoder"]:
        assert torch.equal(a["encoder"][key], b["encoder"][key]), key
    assert a["spec"]["streams"] == 3
    # calibrated at the end of training on the meetings the preset sets aside, identically on resume
    assert a["calibration"]["calibration"]["recordings"] == config.data.calibration_ami_files
    assert a["calibration"] == b["calibration"]

    exported = export_checkpoint(whole.model_path, tmp_path / "m.onnx")
    assert (exported.metadata["readout"], exported.metadata["streams"]) == ("frames", 3)
    assert exported.metadata["segment_hop_samples"] == 9600
    assert exported.metadata["window_seconds"] == 1.6  # the window, not the training segment
    assert exported.metadata["merge_threshold_shift"] == a["calibration"]["merge_threshold_shift"]
    model = EmbeddingModel.load(exported.path)
    assert (model.streams, model.segment_hop) == (3, 9600)
    audio = speechlike(1, 16000 * 6)[0]
    plan = plan_windows(np.ones(round(6 / FRAME_SECONDS), dtype=bool), DiarizationConfig())  # 6 s, all speech
    embeddings = embed_plan(model, audio, plan)
    assert embeddings.shape == (len(plan.starts), 256) and np.isfinite(embeddings).all()
    window = export_checkpoint(whole.model_path, tmp_path / "w.onnx", streams=0)
    assert "streams" not in window.metadata  # 0 forces the one-window export


def test_a_training_step_on_the_teacher_initialised_student_is_a_step_on_ge2e_itself() -> None:
    """The loop trains GE2E's own network: same loss and same gradients as GE2E read per frame
    directly (what the feasibility script trained), so recipes differ only in what they draw."""
    from pipelines.nn.ge2e import GE2EEncoder, WaveformEmbedder
    from pipelines.training.loop import initialise_student, live_teacher_for
    from pipelines.training.losses import cosine_distillation, relational_distillation

    config = load_preset("full")
    reading = StaggeredReading.from_config(config)
    assert reading is not None
    student = build_student(StudentSpec.from_mapping(vars(config.student)))
    initialise_student(student, "teacher")
    ge2e = WaveformEmbedder(GE2EEncoder.pretrained(), stft="conv")
    teacher = live_teacher_for("augmented")
    assert teacher is not None
    rng = np.random.default_rng(0)
    wave = torch.from_numpy(speechlike(2, reading.segment))
    ends = reading.draw_ends(rng, 4)
    with torch.no_grad():
        target = teacher(reading.windows(wave, ends))

    def step_loss(emb: torch.Tensor) -> torch.Tensor:
        return cosine_distillation(emb, target) + 10.0 * relational_distillation(emb, target)

    ours = step_loss(reading.readouts(student, wave, ends))
    direct = FrameReader(ge2e)(wave)[:, torch.as_tensor(ends // 160)]
    theirs = step_loss(direct.reshape(-1, direct.shape[-1]))
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(ours, theirs)
    reference = dict(ge2e.encoder.named_parameters())
    trained = dict(student.encoder.named_parameters())
    assert trained.keys() == reference.keys()
    for name, parameter in trained.items():
        assert parameter.grad is not None and reference[name].grad is not None
        torch.testing.assert_close(parameter.grad, reference[name].grad, msg=name)
