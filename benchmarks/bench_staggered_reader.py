"""Per-window cost of reading GE2E in K staggered segments instead of once per window.

Prints figures only (never asserts). The engine embeds 1.6 s windows every 0.2 s; the bundled
GE2E reads each window from scratch (every 10 ms frame 8 times). A staggered reader runs the same
network over R = 1.6 K / (K - 1) s segments starting every R / K s and reads each window off the
per-frame output of one segment (research/scripts/stateful_ge2e_probe.py has the DER side), so every frame
is read K times. Both are timed here in onnxruntime on one intra-op thread over the same minute of
audio, interleaved over rounds, median reported; the reader's graph is GE2E's (weights do not
change its cost).

    .venv/bin/python benchmarks/bench_staggered_reader.py [--streams 2 3 4] [--segment-hops 0.6] [--rounds 5]

`--segment-hops H` adds layouts that name their hop (segments of 1.6 + H s every H s, each frame
read (1.6 + H) / H times: `student.segment_hop_seconds`, metadata `segment_hop_samples`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pipelines.export.onnx_export import export_waveform_model
from pipelines.nn.frame_reader import FRAMES_OUTPUT, FrameReader
from pipelines.nn.frontend import HOP_LENGTH
from pipelines.nn.ge2e import GE2EEncoder, WaveformEmbedder
from voiceflow.embedding import EmbeddingModel, open_session
from voiceflow.staggered import read_staggered, segment_layout

SAMPLE_RATE = 16000
WINDOW = round(1.6 * SAMPLE_RATE)
STEP = round(0.2 * SAMPLE_RATE)
AUDIO_SECONDS = 60.0
BATCH = 32


def windowed_seconds(model: EmbeddingModel, audio: np.ndarray, ends: np.ndarray) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(ends), BATCH):
        model.embed(np.stack([audio[e - WINDOW : e] for e in ends[i : i + BATCH]]))
    return time.perf_counter() - t0


def staggered_seconds(
    session: ort.InferenceSession, audio: np.ndarray, ends: np.ndarray, streams: int, segment_hop: int
) -> float:
    def frames_of(segments: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {"waveform": segments})[0])

    t0 = time.perf_counter()
    read_staggered(frames_of, audio, ends, WINDOW, streams, HOP_LENGTH, BATCH, segment_hop=segment_hop)
    return time.perf_counter() - t0


def layouts(streams: list[int], hops: list[float]) -> dict[str, tuple[int, int]]:
    """Name -> (streams, segment hop in samples) of every layout to time."""
    named = {f"{k} streams": (k, 0) for k in streams}
    named.update({f"hop {h:g} s": (2, round(h * SAMPLE_RATE)) for h in hops})
    return named


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--segment-hops", type=float, nargs="*", default=[], metavar="SECONDS")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    timed = layouts(args.streams, args.segment_hops)
    rng = np.random.default_rng(0)
    longest = max(segment_layout(WINDOW, k, hop)[0] for k, hop in timed.values())
    audio = (rng.standard_normal(round(AUDIO_SECONDS * SAMPLE_RATE) + longest) * 0.05).astype(np.float32)
    ends = np.arange(WINDOW, round(AUDIO_SECONDS * SAMPLE_RATE) + 1, STEP)
    windowed = EmbeddingModel.load(threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frame_reader.onnx"
        ge2e = WaveformEmbedder(GE2EEncoder.pretrained(), stft="conv")
        export_waveform_model(FrameReader(ge2e), path, 2.4, FRAMES_OUTPUT, {0: "batch", 1: "frames"})
        reader = open_session(path, 1, "frame reader")
        for k, hop in timed.values():  # warm-up
            staggered_seconds(reader, audio, ends[:40], k, hop)
        windowed_seconds(windowed, audio, ends[:40])
        times: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            times.setdefault("windowed", []).append(windowed_seconds(windowed, audio, ends) / len(ends) * 1000)
            for name, (k, hop) in timed.items():
                ms = staggered_seconds(reader, audio, ends, k, hop) / len(ends) * 1000
                times.setdefault(name, []).append(ms)
    base = float(np.median(times["windowed"]))
    print(f"{len(ends)} windows (1.6 s every 0.2 s over {AUDIO_SECONDS:.0f} s), batches of {BATCH}, one thread")
    print(f"{'reading':<22} {'ms/window':>10} {'p10':>7} {'p90':>7} {'speed-up':>9}")
    for name, values in times.items():
        med = float(np.median(values))
        p10, p90 = np.percentile(values, [10, 90])
        print(f"{name:<22} {med:10.3f} {p10:7.3f} {p90:7.3f} {base / med:8.2f}x")


if __name__ == "__main__":
    main()
