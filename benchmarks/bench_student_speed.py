"""Embedding speed per 1.6 s window: GE2E (bundled) vs trained students (FP32, INT8) on one thread.

Prints figures only (never asserts): timings on a shared machine are noisy, so every model is
measured in this one process, interleaved over several rounds, and the median is reported.

    .venv/bin/python benchmarks/bench_student_speed.py [MODEL.onnx ...] [--rounds 5] [--ge2e-conv]

--ge2e-conv also exports GE2E with the students' DFT-conv front end, to separate the front-end
speed-up from the encoder's.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from pipelines.evaluation.speed import ms_per_window

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="*", help="ONNX models to time beside the bundled GE2E")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per (model, batch, round)")
    parser.add_argument("--ge2e-conv", action="store_true")
    args = parser.parse_args()

    models = {"ge2e (bundled)": REPO / "voiceflow" / "models" / "ge2e.onnx"}
    tmp = tempfile.TemporaryDirectory()
    if args.ge2e_conv:
        from pipelines.export.onnx_export import export_waveform_model
        from pipelines.nn.ge2e import GE2EEncoder, WaveformEmbedder

        path = Path(tmp.name) / "ge2e_conv.onnx"
        export_waveform_model(WaveformEmbedder(GE2EEncoder.pretrained(), stft="conv"), path)
        models["ge2e + conv front end"] = path
    for m in args.models:
        models[Path(m).name] = Path(m)

    times: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        for name, path in models.items():
            for batch in (1, 32):
                times.setdefault((name, batch), []).append(ms_per_window(path, batch, args.seconds))
    base = {b: float(np.median(times[("ge2e (bundled)", b)])) for b in (1, 32)}
    print(f"{'model':<34} {'b1 ms/win':>10} {'b32 ms/win':>11} {'speed-up b1':>12} {'b32':>6}  size")
    for name, path in models.items():
        b1, b32 = (float(np.median(times[(name, b)])) for b in (1, 32))
        size = path.stat().st_size / 1e6
        print(
            f"{name:<34} {b1:10.2f} {b32:11.2f} {base[1] / b1:11.2f}x {base[32] / b32:5.2f}x  {size:.2f} MB"
        )
    print("one onnxruntime intra-op thread, 1.6 s windows (25600 samples), median over rounds")


if __name__ == "__main__":
    main()
