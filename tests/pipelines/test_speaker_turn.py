"""augment.speaker_turn / `augment.p_turn`: another speaker's turn before the window a staggered model reads."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pipelines.training.augment import AugmentAssets, augment, rms, speaker_turn
from pipelines.training.config import AugmentConfig

NO_ROOM = AugmentAssets(noises=[], rirs=[])


def test_the_other_speaker_fills_the_head_at_the_crops_level() -> None:
    rng = np.random.default_rng(0)
    x, other = rng.standard_normal(1000).astype(np.float32), 5 * rng.standard_normal(1000).astype(np.float32)
    y = speaker_turn(x, other, 300)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_array_equal(y[300:], x[300:])  # the crop's own speaker keeps the rest, untouched
    np.testing.assert_allclose(y[:300] / other[:300], rms(x[300:]) / rms(other[:300]), rtol=1e-5)
    assert abs(rms(y[:300]) - rms(x[300:])) < 1e-4


def test_a_turn_at_zero_changes_nothing_and_one_past_the_end_is_all_other() -> None:
    x, other = np.ones(100, np.float32), np.full(100, 2.0, np.float32)
    np.testing.assert_array_equal(speaker_turn(x, other, 0), x)
    np.testing.assert_array_equal(speaker_turn(x, other, -5), x)
    np.testing.assert_array_equal(speaker_turn(x, other, 500), other)
    np.testing.assert_array_equal(speaker_turn(x, other[:40], 60)[:40], other[:40] * 1.0 / 2.0)  # short other: clipped


def test_p_turn_zero_keeps_earlier_draws_and_one_always_turns() -> None:
    rng = np.random.default_rng(1)
    x, other = rng.standard_normal(16000).astype(np.float32) * 0.1, rng.standard_normal(16000).astype(np.float32)
    plain = AugmentConfig(p_noise=0.0, p_rir=0.0, p_overlap=0.0, gain_db=(0.0, 0.0))
    before = augment(x, np.random.default_rng(7), plain, NO_ROOM, other)
    again = augment(x, np.random.default_rng(7), replace(plain, p_turn=0.0), NO_ROOM, other)
    np.testing.assert_array_equal(before, again)
    turned = augment(x, np.random.default_rng(7), replace(plain, p_turn=1.0, turn_seconds=(0.25, 0.25)), NO_ROOM, other)
    np.testing.assert_array_equal(turned[4000:], np.clip(x[4000:], -1, 1))
    assert not np.allclose(turned[:4000], x[:4000])
    # without another speaker's crop (same utterance drawn) there is no turn
    alone = augment(x, np.random.default_rng(7), replace(plain, p_turn=1.0), NO_ROOM, None)
    np.testing.assert_array_equal(alone, augment(x, np.random.default_rng(7), plain, NO_ROOM))
