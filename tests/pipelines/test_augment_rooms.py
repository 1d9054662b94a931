"""Shared rooms: crops of one group go through the same reverberation and noise, others do not."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pipelines.training.augment import AugmentAssets, augment, draw_room, reverberate
from pipelines.training.config import AugmentConfig, TrainConfig
from pipelines.training.data import Crop, Dataset, Utterance
from pipelines.training.loop import make_batch

RIRS = [
    np.exp(-np.arange(800) / d).astype(np.float32) * np.sign(np.sin(np.arange(800.0) * k))
    for d, k in ((60, 1), (200, 3), (400, 7))
]
ASSETS = AugmentAssets(noises=[np.random.default_rng(9).standard_normal(40000).astype(np.float32)], rirs=RIRS)
# reverberation always, no noise, no overlap, no gain: a crop's output depends only on its room
REVERB_ONLY = AugmentConfig(p_noise=0.0, p_rir=1.0, p_overlap=0.0, gain_db=(0.0, 0.0))


def one_voice_dataset(crops: int) -> Dataset:
    audio = (np.random.default_rng(1).standard_normal(8000) * 0.1).astype(np.float32)
    # every crop is the same audio, so two outputs differ only through their rooms
    return Dataset([Utterance("u", audio, "s")], [Crop(0, 0, 0)] * crops, [], ["s"], 8000)


def test_a_given_room_is_applied_exactly() -> None:
    x = (np.random.default_rng(2).standard_normal(8000) * 0.1).astype(np.float32)
    room = draw_room(np.random.default_rng(0), REVERB_ONLY, ASSETS)
    assert room.rir is not None and room.noise is None
    out = augment(x, np.random.default_rng(5), REVERB_ONLY, ASSETS, room=room)
    np.testing.assert_allclose(out, np.clip(reverberate(x, room.rir), -1, 1), atol=1e-6)


@pytest.mark.parametrize("group", [1, 4])
def test_crops_share_a_room_only_within_their_group(group: int) -> None:
    config = replace(TrainConfig(), augment=replace(REVERB_ONLY, room_group=group))
    data = one_voice_dataset(8)
    batch = make_batch(data, data.train, np.random.default_rng(3), config, ASSETS)
    same = [[np.array_equal(a, b) for b in batch] for a in batch]
    if group == 4:
        assert all(same[0][j] for j in range(4)) and all(same[4][j] for j in range(4, 8))
    else:  # independent rooms: with three RIRs some pairs differ
        assert not all(same[0])


def test_a_room_group_below_one_is_refused() -> None:
    config = replace(TrainConfig(), augment=replace(REVERB_ONLY, room_group=0))
    with pytest.raises(ValueError, match="room_group"):
        data = one_voice_dataset(2)
        make_batch(data, data.train, np.random.default_rng(0), config, ASSETS)


def test_speed_change_keeps_the_length_and_moves_the_pitch() -> None:
    from pipelines.training.augment import change_speed

    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 200 * t).astype(np.float32)
    for factor in (0.9, 1.1):
        y = change_speed(tone, factor)
        assert y.shape == tone.shape and np.isfinite(y).all()
        peak_hz = np.argmax(np.abs(np.fft.rfft(y[:8000]))) * 16000 / 8000
        assert abs(peak_hz - 200 * factor) <= 4
