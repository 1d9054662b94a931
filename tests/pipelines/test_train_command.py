"""`voiceflow train` picks the task by two rules (the preset's folder, the config's `kind`) and takes
only the options that task has; no training runs here."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.segmentation.config import SegTrainConfig
from pipelines.train_command import load_run
from pipelines.training.config import TrainConfig, with_values
from pipelines.training.overrides import OVERRIDES, overrides_for, task_options
from pipelines.training.presets import EMBEDDING, SEGMENTATION, find_preset, presets, task_of

CONFIG_TYPES = {EMBEDDING: TrainConfig, SEGMENTATION: SegTrainConfig}


def test_every_bundled_preset_loads_as_its_task_config() -> None:
    found = presets()
    assert {"tiny", "full", "student-lstm", "segmentation-tiny", "segmentation-full"} <= set(found)
    for name, preset in found.items():
        task, config = load_run(name, None)
        assert task == preset.task and isinstance(config, CONFIG_TYPES[task]), name
    assert find_preset("segmentation-tiny").path.parent.parent.name == "segmentation"
    assert load_run("segmentation-tiny", None)[1].name == "segmentation-tiny"


def test_a_task_lookup_refuses_another_tasks_preset() -> None:
    with pytest.raises(ValueError, match="unknown segmentation preset 'tiny'"):
        find_preset("tiny", SEGMENTATION)
    with pytest.raises(ValueError, match=r"unknown preset 'nope'; presets: .*segmentation-tiny"):
        find_preset("nope")


def test_a_config_file_trains_the_task_its_kind_names(tmp_path: Path) -> None:
    assert task_of({}) == EMBEDDING and task_of({"kind": "segmentation"}) == SEGMENTATION
    with pytest.raises(ValueError, match="kind must be one of"):
        task_of({"kind": "vad"})
    for kind, body, expected in (
        ("", "seed: 3\n", TrainConfig),
        ("kind: embedding\n", "seed: 3\n", TrainConfig),
        ("kind: segmentation\n", "seed: 3\nsteps: 5\n", SegTrainConfig),
    ):
        path = tmp_path / "c.yaml"
        path.write_text(kind + body)
        _, config = load_run(None, str(path))
        assert isinstance(config, expected) and config.seed == 3, kind
    path.write_text("kind: segmentation\nepochs: 3\n")  # a student key in a segmentation config
    with pytest.raises(ValueError, match="unknown config key"):
        load_run(None, str(path))


def test_each_task_takes_only_its_own_options() -> None:
    given = {"seed": 4, "epochs": 2, "steps": None, "workers": 3, "data_root": "/d", "lr": None}
    values, refused = overrides_for(EMBEDDING, given)
    assert values == {"data.data_root": "/d", "seed": 4, "epochs": 2} and refused == ["--workers"]
    values, refused = overrides_for(SEGMENTATION, given)
    assert values == {"data.data_root": "/d", "seed": 4, "data.workers": 3} and refused == ["--epochs"]
    assert task_options(SEGMENTATION) == ["--steps", "--workers"] and task_options(EMBEDDING) == ["--epochs"]


def test_overrides_set_nested_values_and_keep_the_rest() -> None:
    config = SegTrainConfig()
    changed = with_values(config, {"seed": 7, "data.workers": 2, "data.data_root": None, "lr": None})
    assert (changed.seed, changed.data.workers, changed.lr) == (7, 2, config.lr)
    assert changed.data.source == config.data.source and with_values(config, {"seed": None}) is config


def test_the_parser_offers_every_override_flag() -> None:
    from voiceflow_cli.main import build_parser

    argv = ["train", "--preset", "tiny", "--out", "o"]
    for option in OVERRIDES:
        value = option.choices[0] if option.choices else "1"
        args = build_parser().parse_args([*argv, option.flag, value])
        assert getattr(args, option.dest) == option.type(value), option.flag
