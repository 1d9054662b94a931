"""`--sets ami-train`: the AMI train excerpts score a model only when it never trained on them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.evaluation.harness import AMI_TRAIN_SET, heard_set_recordings, load_sets

ALL_TEN = [f"trn{i:02d}" for i in range(10)]


def trained_on(data: dict[str, Any]) -> dict[str, Any]:
    return {"version": "student-x", "training": {"config": {"data": data}}}


def test_the_bundled_ge2e_never_heard_ami() -> None:
    assert heard_set_recordings({"version": "ge2e"}, [AMI_TRAIN_SET]) == []


def test_a_model_trained_without_ami_audio_may_be_scored_there() -> None:
    meta = trained_on({"ami_files": [], "calibration_ami_files": ALL_TEN})
    assert heard_set_recordings(meta, ["ami-dev", AMI_TRAIN_SET]) == []


def test_a_config_that_left_ami_files_out_heard_the_default_ten() -> None:
    assert heard_set_recordings(trained_on({}), [AMI_TRAIN_SET]) == ALL_TEN
    assert heard_set_recordings({"training": {"config": None}}, [AMI_TRAIN_SET]) == ALL_TEN


def test_only_the_ami_train_set_is_checked() -> None:
    assert heard_set_recordings(trained_on({"ami_files": ["trn03"]}), ["ami-dev", "sim-dev"]) == []
    assert heard_set_recordings(trained_on({"ami_files": ["trn03"]}), [AMI_TRAIN_SET]) == ["trn03"]


def test_a_malformed_training_record_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="ami_files"):
        heard_set_recordings(trained_on({"ami_files": "trn03"}), [AMI_TRAIN_SET])
    for hostile in ({"training": {"config": "full"}}, {"training": {"config": {"data": ["trn00"]}}}):
        with pytest.raises(ValueError, match="cannot tell what it heard"):
            heard_set_recordings(hostile, [AMI_TRAIN_SET])


def evaluate(tmp_path: Path, meta: str, sets: str) -> int:
    from voiceflow_cli.main import main

    model = tmp_path / "model.onnx"
    model.write_bytes(b"not onnx: the refusal comes before the model is read")
    model.with_suffix(".json").write_text(meta)
    return main(["evaluate", "--model", str(model), "--sets", sets, "--speed-seconds", "0", "--no-manifest"])


def test_evaluate_refuses_ami_train_for_a_model_trained_on_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert evaluate(tmp_path, json.dumps(trained_on({"ami_files": ["trn01", "trn07"]})), AMI_TRAIN_SET) == 2
    err = capsys.readouterr().err
    assert "trn01, trn07" in err and "not held out" in err


def test_evaluate_refuses_unreadable_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate(tmp_path, "{not json", AMI_TRAIN_SET) == 2
    assert "unreadable model metadata" in capsys.readouterr().err
    assert evaluate(tmp_path, '["trn00"]', AMI_TRAIN_SET) == 2
    assert "must be a JSON object, not list" in capsys.readouterr().err


def test_unknown_sets_name_the_held_out_one() -> None:
    with pytest.raises(ValueError, match="ami-train"):
        load_sets(["ami-test"])


def test_the_ami_train_set_is_the_ten_thirty_second_excerpts(shared_data: Path) -> None:
    items = load_sets([AMI_TRAIN_SET], data_dir=shared_data)[AMI_TRAIN_SET]
    assert [item.uri for item in items] == ALL_TEN
    assert all(item.uem == [(0.0, 30.0)] for item in items)
