"""VAD cost: the engine's Silero halves (voiceflow.vad) against the source model called per frame.

Prints CPU seconds per audio second (process CPU, one onnxruntime thread) for
1. whole recordings of MINUTES each, alone and 2 / 4 / 8 read together (a batch worker's group);
2. one live stream fed 0.5 s at a time (a pod stream's steps), and 16 streams whose steps are read
   together (the pod's VAD batcher);
each beside the source `silero_vad.onnx` driven as silero-vad's own wrapper drives it (one call per
32 ms frame), with the ratio, and the largest probability difference between the two.

    .venv/bin/python benchmarks/bench_vad.py
    .venv/bin/python benchmarks/bench_vad.py --minutes 2 --stream-seconds 30

Prints figures, never asserts on them (timings depend on the machine and its load).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.evaluation.machine import describe  # noqa: E402

SR = 16000
STEP = 8000  # a pod stream's 0.5 s step


def speech(seconds: float) -> np.ndarray:
    """Real speech (tests/data/dev00.wav, in the repository) repeated to `seconds`."""
    from voiceflow.audio import load_audio

    clip = load_audio(ROOT / "tests" / "data" / "dev00.wav").astype(np.float32)
    return np.resize(clip, int(seconds * SR))


def cpu_per_audio_second(run: Callable[[], object], audio_seconds: float) -> float:
    started = time.process_time()
    run()
    return (time.process_time() - started) / audio_seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="length of each whole recording")
    ap.add_argument("--stream-seconds", type=float, default=60.0, help="audio per live stream")
    args = ap.parse_args()

    from pipelines.export.silero_split import source_probabilities
    from voiceflow.vad import SileroVAD, recording_probabilities

    model = SileroVAD.shared_model()
    seconds = args.minutes * 60
    audio = speech(seconds)
    recording_probabilities(model, [audio[:SR]])  # first-call set-up is not the VAD's per-audio cost
    print(f"machine: {describe()}")

    reference: list[np.ndarray] = []
    source = cpu_per_audio_second(lambda: reference.append(source_probabilities(audio)[0]), seconds)
    halves = cpu_per_audio_second(lambda: recording_probabilities(model, [audio]), seconds)
    difference = float(np.abs(recording_probabilities(model, [audio])[0] - reference[0]).max())
    print(f"whole recording ({args.minutes:g} min), CPU-s per audio s:")
    print(f"  source model, a call per frame  {source:.5f}")
    print(f"  halves, alone                   {halves:.5f}   ({source / halves:.1f}x less)")
    for count in (2, 4, 8):
        group = [np.roll(audio, 7919 * i) for i in range(count)]
        cost = cpu_per_audio_second(functools.partial(recording_probabilities, model, group), seconds * count)
        print(f"  halves, {count} recordings together   {cost:.5f}   ({source / cost:.1f}x less)")
    print(f"  largest probability difference to the source model: {difference:.2e}")

    live = speech(args.stream_seconds)

    def one_stream() -> None:
        vad = SileroVAD()
        for start in range(0, len(live), STEP):
            vad.feed(live[start : start + STEP])

    def streams_together(count: int) -> None:
        from voiceflow.vad import CHUNK, CONTEXT

        states = [np.zeros((2, 1, 128), dtype=np.float32) for _ in range(count)]
        contexts = [np.zeros((1, CONTEXT), dtype=np.float32) for _ in range(count)]
        clips = [np.roll(live, 7919 * i) for i in range(count)]
        for start in range(0, len(live), STEP):
            pieces = [clip[start : start + STEP] for clip in clips]
            jobs = [
                (piece[: len(piece) // CHUNK * CHUNK].reshape(-1, CHUNK), state, context)
                for piece, state, context in zip(pieces, states, contexts, strict=True)
            ]
            results = model.run(jobs)
            states = [state for _, state, _ in results]
            contexts = [context for _, _, context in results]

    per_stream = 1000 * cpu_per_audio_second(one_stream, args.stream_seconds)
    together = 1000 * cpu_per_audio_second(lambda: streams_together(16), args.stream_seconds * 16)
    source_stream = 1000 * source
    print("live streams, 0.5 s steps, CPU ms per audio s per stream:")
    print(f"  source model, a call per frame  {source_stream:.2f}")
    print(f"  halves, one stream              {per_stream:.2f}   ({source_stream / per_stream:.1f}x less)")
    print(f"  halves, 16 streams per call     {together:.2f}   ({source_stream / together:.1f}x less)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
