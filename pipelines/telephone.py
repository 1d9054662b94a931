"""The telephone channel: 300-3400 Hz, 8 kHz, G.711 mu-law, back to 16 kHz. Pure, numpy/scipy.

One definition for everything that simulates a call: the dev suite's telephone stratum
(`pipelines.evaluation.suite.channels` re-exports it) and the trainers' telephone augmentation
(embedding student and segmentation network), so a model is trained on the channel it is
evaluated on. It lives outside `pipelines.evaluation` because the trainers must not import the
evaluation package (import-linter: the evaluation and clustering entry points stay independent,
and `pipelines.clustering` imports the trainer's augmentation).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, resample_poly, sosfiltfilt

from voiceflow import SAMPLE_RATE

TELEPHONE_RATE = 8000
TELEPHONE_BAND = (300.0, 3400.0)
MU = 255.0
# Peak level the codec sees: G.711 clips at full scale, and real calls are not mastered to 0 dBFS.
CODEC_PEAK = 0.7


def mu_law_round_trip(x: np.ndarray, mu: float = MU) -> np.ndarray:
    """G.711 mu-law: compress, quantise to 8 bits, expand (input clipped to [-1, 1])."""
    x = np.clip(x, -1.0, 1.0)
    compressed = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    codes = np.round((compressed + 1.0) / 2.0 * 255.0)  # 256 levels
    decoded = codes / 255.0 * 2.0 - 1.0
    return (np.sign(decoded) * np.expm1(np.abs(decoded) * np.log1p(mu)) / mu).astype(np.float32)


def telephone(speech: np.ndarray) -> np.ndarray:
    """A narrowband call: 300-3400 Hz, down to 8 kHz, G.711 mu-law, back up to 16 kHz for the engine."""
    sos = butter(6, TELEPHONE_BAND, btype="bandpass", fs=SAMPLE_RATE, output="sos")
    band = sosfiltfilt(sos, speech.astype(np.float64))
    narrow = resample_poly(band, TELEPHONE_RATE, SAMPLE_RATE)
    peak = float(np.max(np.abs(narrow))) or 1.0
    coded = mu_law_round_trip(narrow * (CODEC_PEAK / peak)) * (peak / CODEC_PEAK)
    wide = resample_poly(coded, SAMPLE_RATE, TELEPHONE_RATE)[: len(speech)]
    return np.pad(wide, (0, len(speech) - len(wide))).astype(np.float32)
