"""Synthetic rooms: drawn impulse responses with the asked reverberation time and direct-to-reverberant ratio."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.training.augment import AugmentAssets, draw_rir, synthetic_rir
from pipelines.training.config import AugmentConfig
from pipelines.training.data import SAMPLE_RATE

RECORDED = np.array([1.0, 0.5, 0.25], dtype=np.float32)


@pytest.mark.parametrize("seed", range(5))
def test_a_drawn_room_has_unit_energy_and_its_drawn_direct_to_reverberant_ratio(seed: int) -> None:
    rir = synthetic_rir(np.random.default_rng(seed), (0.3, 0.8), (0.0, 10.0))
    assert rir.dtype == np.float32 and np.sum(rir.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-4)
    drr_db = 10 * np.log10(rir[0] ** 2 / np.sum(rir[1:].astype(np.float64) ** 2))
    assert -0.01 <= drr_db <= 10.01
    assert 0.3 * SAMPLE_RATE <= len(rir) <= 0.8 * SAMPLE_RATE + 1
    # the tail decays: the last tenth carries far less energy than the first tenth after the direct path
    tenth = len(rir) // 10
    assert np.sum(rir[-tenth:] ** 2) < 0.01 * np.sum(rir[1 : tenth + 1] ** 2)


def test_rooms_are_a_pure_function_of_the_rng() -> None:
    a = synthetic_rir(np.random.default_rng(3), (0.2, 0.9), (-3.0, 12.0))
    b = synthetic_rir(np.random.default_rng(3), (0.2, 0.9), (-3.0, 12.0))
    c = synthetic_rir(np.random.default_rng(4), (0.2, 0.9), (-3.0, 12.0))
    assert np.array_equal(a, b) and not (len(a) == len(c) and np.array_equal(a, c))


def test_the_synthetic_share_decides_between_recorded_and_drawn_rooms() -> None:
    assets = AugmentAssets(noises=[], rirs=[RECORDED])
    recorded_only = AugmentConfig(p_rir=1.0)
    rng = np.random.default_rng(0)
    assert all(draw_rir(rng, recorded_only, assets) is RECORDED for _ in range(20))
    drawn_only = AugmentConfig(p_rir=1.0, p_synthetic_rir=1.0)
    assert all(len(r) > len(RECORDED) for r in (draw_rir(rng, drawn_only, assets) for _ in range(20)) if r is not None)
    half = AugmentConfig(p_rir=1.0, p_synthetic_rir=0.5)
    kinds = [draw_rir(rng, half, assets) is RECORDED for _ in range(400)]
    assert 0.4 < np.mean(kinds) < 0.6
    # without recorded RIRs a positive share still reverberates; p_rir 0 never does
    assert draw_rir(rng, drawn_only, AugmentAssets(noises=[], rirs=[])) is not None
    assert draw_rir(rng, AugmentConfig(p_rir=0.0, p_synthetic_rir=1.0), assets) is None
