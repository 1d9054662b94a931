"""The recurrent student: teacher initialisation, frame pooling, config refusals, export parity."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.export.checkpoint import export_checkpoint
from pipelines.nn.ge2e import GE2EEncoder
from pipelines.training.config import config_from_dict
from pipelines.training.loop import build_student, check_sequence_loss, initialise_student
from pipelines.training.losses import sequence_distillation
from pipelines.training.student import StudentSpec, build_encoder
from pipelines.training.student_lstm import PooledLSTMEncoder, at_student_steps, copy_teacher_weights
from tests.pipelines.test_export import assert_onnx_matches_torch, speechlike, write_student_checkpoint

# Research recipes live outside the package (research/presets), read by `voiceflow train --config`.
ABLATIONS_DIR = Path(__file__).resolve().parents[2] / "research" / "presets" / "ablations"

SMALL_LSTM = StudentSpec(arch="lstm", frame_stride=3, lstm_layers=1, lstm_hidden=32)


def test_stride_one_teacher_init_is_exactly_ge2e() -> None:
    # The init really is the teacher: at GE2E's own frame rate the student computes GE2E.
    teacher = GE2EEncoder.pretrained()
    student = PooledLSTMEncoder(frame_stride=1, layers=3, hidden=256)
    copied = copy_teacher_weights(student, teacher)
    assert "lstm.weight_hh_l2" in copied and "linear.weight" in copied
    mels = torch.rand(3, 160, 40)
    with torch.no_grad():
        torch.testing.assert_close(student(mels), teacher(mels), rtol=0, atol=0)


def test_fewer_layers_copy_only_the_first_teacher_layers() -> None:
    student = PooledLSTMEncoder(frame_stride=2, layers=2, hidden=256)
    copied = copy_teacher_weights(student, GE2EEncoder.pretrained())
    assert not [k for k in copied if k.endswith("_l2")]
    assert {"lstm.weight_ih_l0", "lstm.weight_hh_l1", "linear.weight"} <= set(copied)


def test_pooling_halves_the_lstm_steps_and_keeps_odd_tails_defined() -> None:
    encoder = PooledLSTMEncoder(frame_stride=3, layers=1, hidden=8)
    seen: list[int] = []
    encoder.lstm.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].shape[1]))
    out = encoder(torch.rand(2, 161, 40))
    assert seen == [53] and out.shape == (2, 256)
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)


@pytest.mark.parametrize(
    ("spec", "init", "error"),
    [
        (StudentSpec(arch="ecapa"), "teacher", "needs student.arch 'lstm'"),
        (StudentSpec(arch="lstm", lstm_hidden=64), "teacher", "no GE2E LSTM layer matches"),
        (StudentSpec(arch="lstm", lstm_layers=1, lstm_hidden=8), "pretrained", "'random' or 'teacher'"),
    ],
)
def test_bad_initialisations_are_refused(spec: StudentSpec, init: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        initialise_student(build_student(spec), init)


@pytest.mark.parametrize("bad", [StudentSpec(arch="transformer"), StudentSpec(arch="lstm", frame_stride=0)])
def test_bad_architectures_are_refused(bad: StudentSpec) -> None:
    with pytest.raises(ValueError):
        build_encoder(bad)


def test_spec_from_an_older_checkpoint_defaults_to_the_conv_student() -> None:
    old = {"channels": 32, "blocks": 1, "embedding_dim": 256, "se_ratio": 8, "input_norm": "batch"}
    assert StudentSpec.from_mapping(old).arch == "ecapa"
    # a config's student section also carries `init`, which is not part of the architecture
    assert StudentSpec.from_mapping({**SMALL_LSTM.to_dict(), "init": "teacher"}) == SMALL_LSTM


def test_recurrent_student_export_matches_torch_with_dynamic_axes(tmp_path: Path) -> None:
    ckpt = write_student_checkpoint(tmp_path / "model.pt", SMALL_LSTM)
    result = export_checkpoint(ckpt, tmp_path / "student.onnx")
    assert result.metadata["architecture"]["type"] == "pooled-lstm"
    assert "3 frames per LSTM step (mean)" in result.metadata["frontend"]
    assert_onnx_matches_torch(ckpt, result.path, [(1, 25600), (4, 25600), (2, 40000), (3, 9000)])
    assert result.sha256 == hashlib.sha256(result.path.read_bytes()).hexdigest()


def test_stacking_student_starts_exactly_as_the_mean_pooling_one() -> None:
    teacher = GE2EEncoder.pretrained()
    mean = PooledLSTMEncoder(frame_stride=3, pooling="mean")
    stack = PooledLSTMEncoder(frame_stride=3, pooling="stack")
    copy_teacher_weights(mean, teacher)
    assert "lstm.weight_ih_l0" in copy_teacher_weights(stack, teacher)
    mels = torch.rand(2, 161, 40)
    with torch.no_grad():
        torch.testing.assert_close(stack(mels), mean(mels), rtol=1e-5, atol=1e-6)


def test_stacking_student_export_matches_torch(tmp_path: Path) -> None:
    spec = StudentSpec(arch="lstm", frame_stride=2, lstm_layers=1, lstm_hidden=16, pooling="stack")
    ckpt = write_student_checkpoint(tmp_path / "model.pt", spec)
    result = export_checkpoint(ckpt, tmp_path / "stack.onnx")
    # 9000 and 8160 samples: odd and even frame counts
    assert_onnx_matches_torch(ckpt, result.path, [(1, 25600), (3, 9000), (2, 8160)])


def test_teacher_hears_the_augmented_batch_only_when_asked() -> None:
    from pipelines.training.loop import live_teacher_for, teacher_on

    assert live_teacher_for("clean") is None  # the cached clean-crop embeddings serve
    with pytest.raises(ValueError, match="'clean', 'augmented', 'dry' or 'wideband'"):
        live_teacher_for("noisy")
    teacher = live_teacher_for("augmented")
    assert teacher is not None
    wave = torch.from_numpy(speechlike(2, 25600))
    target = teacher_on(teacher, wave)
    assert target.shape == (2, 256) and not target.requires_grad
    # it is GE2E itself: the bundled model's embedding of the same audio
    from voiceflow.embedding import DEFAULT_MODEL, EmbeddingModel

    bundled = EmbeddingModel.load(DEFAULT_MODEL).embed(wave.numpy())  # GE2E, whatever is promoted
    np.testing.assert_allclose(target.numpy(), bundled, atol=1e-4)


def test_int8_export_keeps_the_first_lstm_in_float(tmp_path: Path) -> None:
    # onnxruntime's DynamicQuantizeLSTM on every layer collapses trained embeddings (mean cosine to
    # float 0.60 on AMI dev00 windows): the first LSTM reads the front end's linear mel power, whose
    # range int8 activations cannot hold. Later layers read LSTM outputs in [-1, 1] and quantize well.
    import onnx

    spec = StudentSpec(arch="lstm", frame_stride=2, lstm_layers=2, lstm_hidden=64, pooling="stack")
    ckpt = write_student_checkpoint(tmp_path / "model.pt", spec)
    result = export_checkpoint(ckpt, tmp_path / "student.int8.onnx", quantize="int8")
    nodes = onnx.load(str(result.path)).graph.node
    recurrent = [n.op_type for n in nodes if "LSTM" in n.op_type]
    assert recurrent == ["LSTM", "DynamicQuantizeLSTM"]
    assert {n.op_type for n in nodes} & {"MatMulInteger", "DynamicQuantizeLinear"}


def test_the_recurrent_preset_and_its_ablations_load() -> None:
    from pipelines.training.config import load_config, load_preset
    from pipelines.training.staggered import StaggeredReading

    preset = load_preset("student-lstm")
    assert preset.student.arch == "lstm" and preset.student.init == "teacher"
    ablations = sorted(ABLATIONS_DIR.glob("*.yaml"))
    assert len(ablations) >= 5
    for path in ablations:
        config = load_config(path)
        # the conv student's recipe (ecapa-full) is the only one that does not start from GE2E
        assert (config.student.arch, config.student.init) in {("lstm", "teacher"), ("ecapa", "random")}, path.name
        build_encoder(StudentSpec.from_mapping(vars(config.student)))
        StaggeredReading.from_config(config)  # a staggered ablation must be one the objective trains


def test_teacher_sequence_targets_line_up_with_the_student_steps() -> None:
    # A stride-1 student initialised from GE2E *is* GE2E: its per-step outputs must equal the
    # teacher's at exactly the frames at_student_steps picks, and the loss must be zero there.
    teacher = GE2EEncoder.pretrained()
    student = PooledLSTMEncoder(frame_stride=1, layers=3, hidden=256)
    copy_teacher_weights(student, teacher)
    mels = torch.rand(2, 48, 40)
    with torch.no_grad():
        _, teacher_sequence = teacher.forward_with_sequence(mels)
        emb, student_sequence = student.forward_with_sequence(mels)
    assert float(sequence_distillation(student_sequence, at_student_steps(teacher_sequence, 1))) == 0.0
    torch.testing.assert_close(emb, teacher(mels), rtol=0, atol=1e-6)
    # stride 3 over 48 frames: 16 steps, ending after frames 2, 5, ..., 47
    picked = at_student_steps(teacher_sequence, 3)
    assert picked.shape == (2, 16, 256)
    torch.testing.assert_close(picked[:, 0], teacher_sequence[:, 2])
    torch.testing.assert_close(picked[:, -1], teacher_sequence[:, 47])


def test_sequence_loss_refuses_misaligned_steps_and_grows_with_the_gap() -> None:
    target = torch.zeros(2, 5, 4)
    with pytest.raises(ValueError, match="do not match"):
        sequence_distillation(torch.zeros(2, 6, 4), target)
    assert float(sequence_distillation(torch.full((2, 5, 4), 0.5), target)) == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("student", "teacher_input", "error"),
    [
        ({"arch": "ecapa"}, "augmented", "student.arch 'lstm' with lstm_hidden 256"),
        ({"arch": "lstm", "lstm_hidden": 128}, "augmented", "lstm_hidden 256"),
        ({"arch": "lstm"}, "clean", "teacher_input 'augmented'"),
    ],
)
def test_sequence_loss_needs_an_aligned_student_and_a_live_teacher(
    student: dict[str, object], teacher_input: str, error: str
) -> None:
    config = config_from_dict({"student": student, "loss": {"sequence_weight": 1.0, "teacher_input": teacher_input}})
    with pytest.raises(ValueError, match=error):
        check_sequence_loss(config)
    check_sequence_loss(config_from_dict({"student": student}))  # weight 0: nothing to check


def test_conv_frontend_starts_as_the_plain_stacking_student() -> None:
    plain = PooledLSTMEncoder(frame_stride=3, layers=1, hidden=16, pooling="stack")
    with_conv = PooledLSTMEncoder(frame_stride=3, layers=1, hidden=16, pooling="stack", conv_frontend=64)
    with_conv.load_state_dict({**with_conv.state_dict(), **plain.state_dict()})
    mels = torch.rand(2, 161, 40)  # mel power is >= 0: the front end's ReLU passes the identity part
    with torch.no_grad():
        torch.testing.assert_close(with_conv(mels), plain(mels), rtol=0, atol=1e-6)


@pytest.mark.parametrize(("pooling", "channels"), [("mean", 64), ("stack", 16)])
def test_conv_frontend_needs_stacking_and_room_for_the_bands(pooling: str, channels: int) -> None:
    with pytest.raises(ValueError, match="conv_frontend needs pooling 'stack'"):
        PooledLSTMEncoder(frame_stride=3, layers=1, hidden=8, pooling=pooling, conv_frontend=channels)


def test_conv_frontend_student_export_matches_torch(tmp_path: Path) -> None:
    spec = StudentSpec(arch="lstm", frame_stride=3, lstm_layers=1, lstm_hidden=32, pooling="stack", conv_frontend=48)
    checkpoint = write_student_checkpoint(tmp_path / "model.pt", spec)
    onnx_path = export_checkpoint(checkpoint, tmp_path / "student.onnx").path
    assert_onnx_matches_torch(checkpoint, onnx_path, [(1, 25600), (3, 17000)])
