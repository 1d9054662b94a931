"""Embedding speed: milliseconds per 1.6 s window on one CPU thread, the engine's serving setting."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

WINDOW_SAMPLES = 25600  # 1.6 s at 16 kHz


def ms_per_window(model_path: Path, batch: int, seconds: float = 2.0, threads: int = 1) -> float:
    """Median over repeated runs of (run time / batch), after one warm-up run.

    The median resists the noise of a shared machine better than the mean; figures are only
    comparable when measured in the same process on the same machine.
    """
    from voiceflow.embedding import EmbeddingModel

    model = EmbeddingModel.load(model_path, threads=threads)
    windows = (np.random.default_rng(0).standard_normal((batch, WINDOW_SAMPLES)) * 0.05).astype(np.float32)
    model.embed(windows)
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 3:
        t0 = time.perf_counter()
        model.embed(windows)
        times.append((time.perf_counter() - t0) / batch * 1000.0)
    return float(np.median(times))


def speed_report(model_path: Path, seconds: float = 2.0) -> dict[str, float]:
    return {
        "ms_per_window_b1": ms_per_window(model_path, 1, seconds),
        "ms_per_window_b32": ms_per_window(model_path, 32, seconds),
    }
