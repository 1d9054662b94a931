"""Embedding speed: milliseconds per 1.6 s window on one CPU thread, the engine's serving setting."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

WINDOW_SAMPLES = 25600  # 1.6 s at 16 kHz


STEP_SAMPLES = 3200  # the engine's 0.2 s window step
STAGGERED_AUDIO_SECONDS = 20.0


def ms_per_window(model_path: Path, batch: int, seconds: float = 2.0, threads: int = 1) -> float:
    """Median over repeated runs of (run time / windows), after one warm-up run.

    A window model embeds `batch` windows per run. A model exported for staggered reading
    (voiceflow.staggered) is timed the way the engine reads it: every window of 20 s of audio
    (1.6 s every 0.2 s) read off segments run `batch` at a time. The median resists the noise of a
    shared machine better than the mean; figures are only comparable when measured in the same
    process on the same machine.
    """
    from voiceflow.embedding import EmbeddingModel

    model = EmbeddingModel.load(model_path, threads=threads)
    rng = np.random.default_rng(0)
    if model.streams:
        audio = (rng.standard_normal(round(STAGGERED_AUDIO_SECONDS * 16000)) * 0.05).astype(np.float32)
        ends = np.arange(WINDOW_SAMPLES, len(audio) + 1, STEP_SAMPLES)

        def run() -> int:
            model.read_windows(audio, ends, WINDOW_SAMPLES, batch)
            return len(ends)
    else:
        windows = (rng.standard_normal((batch, WINDOW_SAMPLES)) * 0.05).astype(np.float32)

        def run() -> int:
            model.embed(windows)
            return batch

    run()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 3:
        t0 = time.perf_counter()
        count = run()
        times.append((time.perf_counter() - t0) / count * 1000.0)
    return float(np.median(times))


def speed_report(model_path: Path, seconds: float = 2.0) -> dict[str, float]:
    return {
        "ms_per_window_b1": ms_per_window(model_path, 1, seconds),
        "ms_per_window_b32": ms_per_window(model_path, 32, seconds),
    }
