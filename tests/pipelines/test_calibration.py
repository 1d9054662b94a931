"""A model's merge-threshold shift: measured at the end of training on meetings it never heard,
carried by the export of the reading it was measured on, added by the engine to its merge threshold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.evaluation.devsets import DevItem, load_ami_split
from pipelines.export.calibration import (
    Calibration,
    PairCosine,
    calibrate,
    calibrate_checkpoint,
    calibration_meetings,
    mean_shift,
    speaker_pair_cosines,
    window_speakers,
)
from pipelines.export.checkpoint import carried_calibration, export_checkpoint
from pipelines.nn.ge2e import GE2EEncoder
from pipelines.training.config import DataConfig, load_preset
from pipelines.training.loop import calibrate_final_model
from pipelines.training.student import StudentSpec
from pipelines.training.student_lstm import PooledLSTMEncoder, copy_teacher_weights
from voiceflow.clustering.offline import OfflineClusteringConfig, shift_merge_threshold
from voiceflow.embedding import DEFAULT_MODEL, EmbeddingModel, ModelError
from voiceflow.pipeline import FRAME_SECONDS, WindowPlan
from voiceflow.segments import Segment
from voiceflow.vad import Speech
from voiceflow_cli.main import main


def unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    return a / np.linalg.norm(a)


def test_pair_cosines_are_raw_centroid_cosines_of_speakers_with_enough_windows() -> None:
    a, b, c = unit([1, 0, 0]), unit([0.6, 0.8, 0]), unit([0, 0, 1])
    embeddings = np.stack([a] * 5 + [b * 3.0] * 5 + [c] * 4 + [a])  # scale must not matter: cosines
    labels = np.array([0] * 5 + [1] * 5 + [2] * 4 + [-1])  # speaker 2 has too few, -1 is nobody's
    pairs = speaker_pair_cosines(embeddings, labels)
    assert list(pairs) == [(0, 1)] and pairs[0, 1] == pytest.approx(0.6)
    assert speaker_pair_cosines(embeddings, labels, min_windows=4)[0, 2] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="labels"):
        speaker_pair_cosines(embeddings, labels[:-1])


def pair(model: float, reference: float) -> PairCosine:
    return PairCosine("r", ("A", "B"), model, reference)


def test_shift_is_the_mean_difference_and_refuses_what_is_no_calibration() -> None:
    assert mean_shift([pair(0.87, 0.85), pair(0.80, 0.79)]) == pytest.approx(0.015)
    with pytest.raises(ValueError, match="at least one pair"):
        mean_shift([])
    with pytest.raises(ValueError, match="outside"):
        mean_shift([pair(0.9, 0.3)])  # another scale altogether, not GE2E's shifted
    with pytest.raises(ValueError, match="outside"):
        mean_shift([pair(float("nan"), 0.8)])


def test_window_speakers_by_fill_and_the_other_voices() -> None:
    reference = [Segment(0.0, 2.0, "B"), Segment(1.25, 4.0, "A")]
    item = DevItem("x", np.zeros(64000, dtype=np.float32), reference, [(0.0, 4.0)])
    starts = np.round(np.array([0.0, 0.4, 2.0]) / FRAME_SECONDS).astype(int)  # in VAD frames
    plan = WindowPlan(starts, 50)
    # 0-1.6: B 1.6 s, A 0.35 s; ~0.4-2.0: B 1.6, A 0.73; ~2.0-3.6: A (B's last 16 ms)
    np.testing.assert_array_equal(window_speakers(item, plan, 1.6), [-1, -1, 0])
    np.testing.assert_array_equal(window_speakers(item, plan, 1.6, fill=0.6, others=0.4), [1, -1, 0])


def test_the_engine_moves_only_a_set_merge_threshold() -> None:
    config = OfflineClusteringConfig()
    assert shift_merge_threshold(config, 0.02).merge_threshold == pytest.approx(0.87)
    assert shift_merge_threshold(config, 0.0) is config
    unmerged = OfflineClusteringConfig(merge_threshold=None)
    assert shift_merge_threshold(unmerged, 0.02).merge_threshold is None


def copy_ge2e(tmp_path: Path, name: str, meta: dict[str, object]) -> Path:
    for suffix in (".onnx", ".background.npy"):
        source = DEFAULT_MODEL.with_name(DEFAULT_MODEL.stem + suffix)
        (tmp_path / f"{name}{suffix}").write_bytes(source.read_bytes())
    (tmp_path / f"{name}.json").write_text(json.dumps(meta))
    return tmp_path / f"{name}.onnx"


@pytest.mark.parametrize("value", ["0.02", True, 0.5, -0.3, float("nan"), None, [0.01]])
def test_a_hostile_shift_in_model_metadata_is_refused_at_load(tmp_path: Path, value: object) -> None:
    path = copy_ge2e(tmp_path, "m", {"merge_threshold_shift": value})
    with pytest.raises(ModelError, match="merge_threshold_shift"):
        EmbeddingModel.load(path)


def test_the_diarizer_clusters_with_the_models_shift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import voiceflow.pipeline as pipeline

    model = EmbeddingModel.load(copy_ge2e(tmp_path, "m", {"merge_threshold_shift": 0.025}))
    assert model.merge_threshold_shift == 0.025
    seen: list[OfflineClusteringConfig] = []

    def spy(embeddings: np.ndarray, config: OfflineClusteringConfig, *args: object) -> np.ndarray:
        seen.append(config)
        return np.zeros(len(embeddings), dtype=int)

    monkeypatch.setattr(pipeline, "cluster_embeddings", spy)
    t = np.arange(16000 * 4) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    diarizer = pipeline.Diarizer(embedding_model=model)
    monkeypatch.setattr(diarizer, "speech", lambda a: Speech.of_mask(np.ones(len(a) // 512, dtype=bool)))
    diarizer.diarize(audio)
    assert seen and seen[0].merge_threshold == pytest.approx(0.875)
    assert diarizer.config.clustering.merge_threshold == 0.85  # the configured value stays as set


def test_calibration_meetings_must_be_meetings_the_model_never_trains_on() -> None:
    with pytest.raises(ValueError, match="never trains on"):
        DataConfig(ami_files=["trn00", "trn04"], calibration_ami_files=["trn04"])
    data = load_preset("full").data
    assert data.calibration_ami_files and not set(data.calibration_ami_files) & set(data.ami_files)
    assert calibration_meetings({"data": {"ami_files": ["trn00"]}}) == []  # none set aside: no calibration


def calibration_result(streams: int, segment_hop: int = 0) -> dict[str, object]:
    return Calibration(0.02, (pair(0.87, 0.85),), ("trn04",), "ge2e", streams, segment_hop).to_metadata()


def test_an_export_carries_the_calibration_only_of_the_reading_it_was_measured_on() -> None:
    state = {"calibration": calibration_result(3)}
    assert carried_calibration(state, 3, 0, None)["merge_threshold_shift"] == 0.02
    assert carried_calibration(state, 0, 0, None) == {}  # one window at a time is another reading
    assert carried_calibration(state, 3, 0, "int8") == {}  # so is INT8
    assert carried_calibration(state, 3, 9600, None) == {}  # so is another segment hop
    assert carried_calibration({}, 3, 0, None) == {}
    hopped = {"calibration": calibration_result(3, 9600)}
    assert hopped["calibration"]["calibration"]["reading"]["segment_hop_samples"] == 9600  # type: ignore[index]
    assert carried_calibration(hopped, 3, 9600, None)["merge_threshold_shift"] == 0.02
    assert carried_calibration(hopped, 3, 0, None) == {}


def ge2e_checkpoint(path: Path, calibration_files: list[str], shared: Path) -> Path:
    """GE2E's own weights as a 3-stream student whose config set AMI meetings aside."""
    encoder = PooledLSTMEncoder(frame_stride=1, layers=3, hidden=256)
    copy_teacher_weights(encoder, GE2EEncoder.pretrained())
    spec = StudentSpec(arch="lstm", frame_stride=1, lstm_layers=3, lstm_hidden=256, streams=3)
    data = {
        "crop_seconds": 1.6,
        "data_root": str(shared),
        "ami_files": ["trn00"],
        "calibration_ami_files": calibration_files,
    }
    torch.save(
        {
            "format": "voiceflow-student-1",
            "spec": spec.to_dict(),
            "stft": "conv",
            "encoder": encoder.state_dict(),
            "config": {"name": "ge2e-k3", "data": data},
            "metrics": {},
        },
        path,
    )
    return path


@pytest.mark.shared
def test_ge2e_against_itself_reads_no_shift(shared_data: Path) -> None:
    items = load_ami_split("train", shared_data, ["trn04", "trn08"])
    ge2e = EmbeddingModel.load(DEFAULT_MODEL)
    result = calibrate(ge2e, items, ge2e)
    assert result.shift == 0.0 and result.streams == 0
    assert {p.recording for p in result.pairs} == {"trn04", "trn08"}  # a pair of voices in each meeting


@pytest.mark.shared
@pytest.mark.slow
def test_training_stores_the_calibration_and_the_default_export_carries_it(shared_data: Path, tmp_path: Path) -> None:
    """GE2E read in 3 staggered streams (untrained for it) against windowed GE2E, on two meetings."""
    checkpoint = ge2e_checkpoint(tmp_path / "model.pt", ["trn04", "trn08"], shared_data)
    summary = calibrate_final_model(checkpoint, lambda _m: None)
    stored = torch.load(checkpoint, weights_only=False)["calibration"]
    shift = stored["merge_threshold_shift"]
    assert summary == {"merge_threshold_shift": pytest.approx(shift)} and shift != 0.0 and abs(shift) < 0.2
    assert stored["calibration"]["reading"] == {"streams": 3, "quantization": "none"}
    assert len(stored["calibration"]["pairs"]) == 2

    exported = export_checkpoint(checkpoint, tmp_path / "m.onnx")
    assert EmbeddingModel.load(exported.path).merge_threshold_shift == pytest.approx(shift)
    # --no-plda: fitting the PLDA on every training speaker of ../shared took ~4 minutes here, and
    # the PLDA fit at export has its own test (test_export_plda.py, on tiny data)
    plain = ["export", str(checkpoint), "--out", str(tmp_path / "plain.onnx"), "--no-calibrate", "--no-plda"]
    assert main(plain) == 0
    assert "merge_threshold_shift" not in json.loads((tmp_path / "plain.json").read_text())
    window = export_checkpoint(checkpoint, tmp_path / "w.onnx", streams=0)
    assert EmbeddingModel.load(window.path).merge_threshold_shift == 0.0

    no_meetings = ge2e_checkpoint(tmp_path / "none.pt", [], shared_data)
    assert calibrate_checkpoint(no_meetings) is None and calibrate_final_model(no_meetings, print) == {}


@pytest.mark.shared
def test_calibration_is_refused_for_meetings_that_do_not_exist(shared_data: Path) -> None:
    config = {"data": {"data_root": str(shared_data), "ami_files": ["trn00"], "calibration_ami_files": ["trn99"]}}
    with pytest.raises(ValueError, match="trn99"):
        calibration_meetings(config)
