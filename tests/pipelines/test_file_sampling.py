"""data.sampling "file": crops drawn as a recording chosen uniformly, then any offset in it."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipelines.training.config import DataConfig, TrainConfig, config_from_dict, load_preset
from pipelines.training.data import Crop, Dataset, Utterance, build_dataset, crop_label, draw_file_crops
from pipelines.training.loop import check_sampling, step_crops

CROP = 8000  # 0.5 s


def toy_dataset() -> Dataset:
    """Two book speakers (one shorter than a crop), a meeting with two turns, a held-out speaker."""
    rng = np.random.default_rng(0)

    def noise(n: int) -> np.ndarray:
        return np.asarray(rng.standard_normal(n) * 0.1, dtype=np.float32)

    meeting_turns = ((0.0, 2.0, "ami_a"), (3.0, 5.0, "ami_b"))
    utterances = [
        Utterance("libri/a", noise(40000), "a"),
        Utterance("libri/b", noise(5000), "b"),
        Utterance("ami/m", noise(80000), None, meeting_turns),
        Utterance("libri/held", noise(40000), "held"),
    ]
    speakers = ["a", "ami_a", "ami_b", "b"]
    grid = [Crop(0, 0, 0), Crop(1, 0, 3), Crop(2, 0, 1)]
    return Dataset(utterances, grid, [Crop(3, 0, 0)], speakers, CROP, (0, 1, 2))


def test_draws_cover_every_training_recording_alike_and_never_a_held_out_one() -> None:
    dataset = toy_dataset()
    crops = draw_file_crops(dataset, np.random.default_rng(1), 3000)
    per_recording = Counter(c.utterance for c in crops)
    assert set(per_recording) == {0, 1, 2}  # the held-out speaker (3) is never drawn
    assert all(900 <= n <= 1100 for n in per_recording.values())  # uniform over recordings, not seconds
    for crop in crops:
        length = len(dataset.utterances[crop.utterance].audio)
        assert 0 <= crop.start < max(1, length - CROP)
    assert {c.start for c in crops if c.utterance == 1} == {0}  # shorter than a crop: from its start
    meeting_starts = [c.start for c in crops if c.utterance == 2]
    assert len(set(meeting_starts)) > 500  # any offset, not a grid


def test_draws_are_a_pure_function_of_the_rng() -> None:
    dataset = toy_dataset()
    a = draw_file_crops(dataset, np.random.default_rng([0, 3, 5]), 16)
    b = draw_file_crops(dataset, np.random.default_rng([0, 3, 5]), 16)
    c = draw_file_crops(dataset, np.random.default_rng([0, 3, 6]), 16)
    assert a == b and a != c


@pytest.mark.parametrize(
    ("utterance", "seconds", "speaker"),
    [
        (0, 1.0, "a"),  # a book: its reader, wherever the crop falls
        (1, 0.0, "b"),
        (2, 1.0, "ami_a"),  # inside one meeting turn
        (2, 3.5, "ami_b"),
        (2, 1.8, None),  # across the turn's end into silence: unlabelled
        (2, 2.3, None),  # silence
    ],
)
def test_a_drawn_crop_is_labelled_by_the_grids_rules(utterance: int, seconds: float, speaker: str | None) -> None:
    dataset = toy_dataset()
    expected = dataset.speakers.index(speaker) if speaker else -1
    assert crop_label(dataset, utterance, round(seconds * 16000)) == expected


def test_a_dataset_without_training_recordings_refuses_to_draw() -> None:
    dataset = replace(toy_dataset(), train_utterances=())
    with pytest.raises(ValueError, match="no training utterances"):
        draw_file_crops(dataset, np.random.default_rng(0), 1)


def test_grid_sampling_takes_the_epochs_slice_and_file_sampling_draws() -> None:
    dataset = toy_dataset()
    grid = replace(TrainConfig(), batch_size=2)
    assert step_crops(dataset, grid, np.array([2, 0]), np.random.default_rng(0)) == [dataset.train[2], dataset.train[0]]
    drawn = replace(grid, data=replace(grid.data, sampling="file"))
    crops = step_crops(dataset, drawn, np.array([2, 0]), np.random.default_rng(0))
    assert crops == draw_file_crops(dataset, np.random.default_rng(0), 2)


@pytest.mark.parametrize("sampling", ["random", "", "GRID", None, 3, ["file"]])
def test_an_unknown_sampling_is_refused(sampling: object) -> None:
    with pytest.raises(ValueError, match=r"data\.sampling"):
        config_from_dict({"data": {"sampling": sampling}})


def test_file_sampling_needs_a_teacher_that_hears_the_batch() -> None:
    config = config_from_dict({"data": {"sampling": "file"}, "loss": {"teacher_input": "clean"}})
    with pytest.raises(ValueError, match="teacher_input 'augmented'"):
        check_sampling(config)
    check_sampling(replace(config, loss=replace(config.loss, teacher_input="augmented")))
    check_sampling(TrainConfig())  # the grid may use the clean cache


def test_every_preset_names_a_known_sampling() -> None:
    assert DataConfig().sampling == "grid"
    assert load_preset("tiny").data.sampling == "grid"


@pytest.mark.shared
def test_the_training_recordings_are_the_books_and_meetings_only(shared_data: Path) -> None:
    config = DataConfig(data_root=str(shared_data), max_speakers=3, val_speakers=2, ami_files=["trn00"])
    dataset = build_dataset(config, 0)
    keys = [dataset.utterances[u].key for u in dataset.train_utterances]
    assert len(keys) == 4 and keys[-1] == "ami/trn00" and all(k.startswith("libri/") for k in keys[:3])
    held_out = {dataset.utterances[c.utterance].key for c in dataset.val}
    assert held_out and not held_out & set(keys)


def test_a_meeting_group_opens_every_batch_with_crops_of_one_meeting() -> None:
    dataset = toy_dataset()
    for seed in range(20):
        crops = draw_file_crops(dataset, np.random.default_rng(seed), 8, meeting_group=3)
        assert len(crops) == 8 and {c.utterance for c in crops[:3]} == {2}  # the only meeting
        assert len({c.start for c in crops[:3]}) == 3  # three places in it, not one crop thrice
    # without a group the draws are exactly the plain ones, so older runs replay unchanged
    plain = draw_file_crops(dataset, np.random.default_rng(4), 8)
    assert draw_file_crops(dataset, np.random.default_rng(4), 8, meeting_group=0) == plain
    assert [c.utterance for c in draw_file_crops(dataset, np.random.default_rng(4), 2, meeting_group=5)] == [2, 2]


def test_a_meeting_group_needs_meetings_to_draw_from() -> None:
    books_only = replace(toy_dataset(), train_utterances=(0, 1))
    with pytest.raises(ValueError, match="AMI meetings"):
        draw_file_crops(books_only, np.random.default_rng(0), 4, meeting_group=2)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"meeting_group": 4}, "needs data.sampling 'file'"),
        ({"sampling": "file", "meeting_group": -1}, r"0\.\.16"),
        ({"sampling": "file", "meeting_group": 17}, r"0\.\.16"),
        ({"sampling": "file", "meeting_group": 2.5}, "whole number"),
        ({"sampling": "file", "meeting_group": True}, "whole number"),
        ({"sampling": "file", "meeting_group": "8"}, "whole number"),
    ],
)
def test_meeting_groups_the_loop_cannot_draw_are_refused(data: dict[str, object], error: str) -> None:
    config = config_from_dict({"batch_size": 16, "data": data, "loss": {"teacher_input": "augmented"}})
    with pytest.raises(ValueError, match=error):
        check_sampling(config)


def test_the_meetings_ablation_groups_one_meeting_into_one_room() -> None:
    from pipelines.training.config import load_config
    from pipelines.training.staggered import check_staggered

    config = load_config(Path(__file__).parents[2] / "research/presets/ablations/staggered-meetings.yaml")
    check_sampling(config)
    check_staggered(config)
    assert config.data.meeting_group == config.augment.room_group == 8 and config.data.sampling == "file"


def test_train_refuses_a_sampling_it_cannot_draw_before_loading_any_data(tmp_path: Path) -> None:
    from pipelines.training.loop import train

    config = config_from_dict(
        {"data": {"sampling": "file", "data_root": str(tmp_path / "absent")}, "loss": {"teacher_input": "clean"}}
    )
    with pytest.raises(ValueError, match="teacher_input 'augmented'"):  # not a missing-file error
        train(config, tmp_path / "out", progress=False, log=lambda _m: None)
