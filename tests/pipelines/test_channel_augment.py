"""The student's channel augmentation: a telephone line (the dev suite's), and a dry copy of every
crop for a teacher that hears the clean line (loss.teacher_input "dry")."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pipelines.telephone import telephone
from pipelines.training.augment import AugmentAssets, augment, channel, voice
from pipelines.training.config import AugmentConfig, TrainConfig, config_from_dict
from pipelines.training.data import Crop, Dataset, Utterance
from pipelines.training.loop import live_teacher_for, make_batch, make_batch_pair

ASSETS = AugmentAssets(
    noises=[np.random.default_rng(9).standard_normal(40000).astype(np.float32)],
    rirs=[np.exp(-np.arange(800) / 200.0).astype(np.float32)],
)
EVERYTHING = AugmentConfig(p_noise=1.0, p_rir=1.0, p_overlap=0.5, p_turn=0.5, p_speed=0.5, p_telephone=0.5)


def voices_dataset(crops: int) -> Dataset:
    rng = np.random.default_rng(1)
    utterances = [Utterance(f"u{i}", (rng.standard_normal(8000) * 0.1).astype(np.float32), f"s{i}") for i in range(3)]
    return Dataset(utterances, [Crop(i % 3, 0, i % 3) for i in range(crops)], [], ["s0", "s1", "s2"], 8000)


def band_energy(x: np.ndarray, low_hz: float, high_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / 16000)
    return float(spectrum[(freqs >= low_hz) & (freqs < high_hz)].sum() / spectrum.sum())


def test_the_telephone_channel_is_narrowband() -> None:
    x = (np.random.default_rng(0).standard_normal(16000) * 0.1).astype(np.float32)
    config = AugmentConfig(p_noise=0.0, p_rir=0.0, p_overlap=0.0, gain_db=(0.0, 0.0), p_telephone=1.0)
    out = augment(x, np.random.default_rng(0), config, ASSETS)
    assert out.shape == x.shape
    assert band_energy(x, 4000, 8000) > 0.4  # white noise: half its energy above 4 kHz
    assert band_energy(out, 4000, 8000) < 0.01  # 8 kHz sampling: nothing above 4 kHz survives
    np.testing.assert_allclose(out, np.clip(telephone(x), -1, 1), atol=1e-6)


def test_augment_is_the_voice_then_the_channel_with_one_rng() -> None:
    x, other = voices_dataset(2).utterances[0].audio, voices_dataset(2).utterances[1].audio
    for seed in range(5):
        rng = np.random.default_rng(seed)
        split = channel(voice(x, rng, EVERYTHING, other), rng, EVERYTHING, ASSETS)
        np.testing.assert_array_equal(augment(x, np.random.default_rng(seed), EVERYTHING, ASSETS, other), split)


def test_the_batch_pair_is_the_batch_and_its_dry_voices() -> None:
    data = voices_dataset(6)
    config = replace(TrainConfig(), augment=replace(EVERYTHING, p_speed=0.0, p_turn=0.0, p_overlap=0.0))
    heard, dry, _ = make_batch_pair(data, data.train, np.random.default_rng(4), config, ASSETS)
    np.testing.assert_array_equal(heard, make_batch(data, data.train, np.random.default_rng(4), config, ASSETS))
    # no speed, turn or overlap: the dry copy is the crop itself; the heard one went through rooms
    expected = np.stack([data.utterances[c.utterance].audio for c in data.train])
    np.testing.assert_allclose(dry, expected, atol=1e-7)
    assert not np.allclose(heard, dry, atol=1e-3)


def test_a_dry_teacher_is_a_live_teacher() -> None:
    from pipelines.training.staggered import check_staggered

    student = {"arch": "lstm", "frame_stride": 1, "streams": 3}
    config = config_from_dict({"student": student, "loss": {"teacher_input": "dry", "centered_weight": 0.0}})

    check_staggered(config)  # accepted: the teacher hears each window, dry
    assert live_teacher_for("dry") is not None
    with pytest.raises(ValueError, match="'clean', 'augmented', 'dry' or 'wideband'"):
        live_teacher_for("noisy")


def test_the_wideband_copy_is_the_heard_batch_before_its_telephone_line() -> None:
    data = voices_dataset(6)
    no_line = replace(TrainConfig(), augment=replace(EVERYTHING, p_telephone=0.0))
    pair = make_batch_pair(data, data.train, np.random.default_rng(4), no_line, ASSETS)
    np.testing.assert_array_equal(pair.wideband, pair.heard)  # no telephone drawn: the same audio

    every_line = replace(TrainConfig(), augment=replace(EVERYTHING, p_telephone=1.0))
    pair = make_batch_pair(data, data.train, np.random.default_rng(4), every_line, ASSETS)
    plain = make_batch(data, data.train, np.random.default_rng(4), every_line, ASSETS)
    np.testing.assert_array_equal(pair.heard, plain)
    for wideband, heard in zip(pair.wideband, pair.heard, strict=True):
        assert not np.allclose(heard, wideband, atol=1e-4)  # the line changed it
        np.testing.assert_allclose(heard, np.clip(telephone(wideband), -1, 1), atol=1e-6)
    # the room, noise and gain are the heard batch's: a "wideband" teacher hears the student's channel
    assert not np.allclose(pair.wideband, pair.dry, atol=1e-3)


def test_a_wideband_teacher_is_a_live_teacher() -> None:
    from pipelines.training.staggered import check_staggered

    student = {"arch": "lstm", "frame_stride": 1, "streams": 3}
    loss = {"teacher_input": "wideband", "centered_weight": 0.0}
    check_staggered(config_from_dict({"student": student, "loss": loss}))  # accepted
    assert live_teacher_for("wideband") is not None
