"""Engine speed: embedding throughput/latency (fp32 vs INT8, one thread) and diarize real-time factor.

    python benchmarks/bench_engine.py [--model M] [--windows 200] [--rtf-minutes 10] [--der]

Prints figures only; nothing here asserts a time. INT8 is onnxruntime's dynamic quantization of
the same graph (weights int8, activations quantized at run time); with --der its DER on the dev
sets is printed beside fp32's (needs ../shared).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voiceflow.embedding import DEFAULT_MODEL, EmbeddingModel
from voiceflow.segments import Segment


def quantize_int8(source: Path, target: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    return target


def percentiles(samples: list[float]) -> str:
    p50, p95, p99 = np.percentile(np.array(samples) * 1000, [50, 95, 99])
    return f"p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  p99 {p99:6.2f} ms"


def bench_embedding(model: EmbeddingModel, n_windows: int, label: str) -> float:
    rng = np.random.default_rng(0)
    windows = (rng.standard_normal((n_windows, 25600)) * 0.05).astype(np.float32)
    model.embed(windows[:4])  # warm-up
    latencies = []
    for i in range(n_windows):
        t0 = time.perf_counter()
        model.embed(windows[i : i + 1])
        latencies.append(time.perf_counter() - t0)
    single_rate = n_windows / sum(latencies)
    t0 = time.perf_counter()
    model.embed_batched(windows, batch_size=32)
    batched_rate = n_windows / (time.perf_counter() - t0)
    print(
        f"{label:<14} batch 1: {single_rate:7.1f} windows/s ({percentiles(latencies)})  "
        f"batch 32: {batched_rate:7.1f} windows/s"
    )
    return float(np.median(latencies))


def long_recording(minutes: float) -> np.ndarray:
    from voiceflow.audio import load_audio

    sample = load_audio(Path(__file__).resolve().parents[1] / "voiceflow" / "samples" / "conversation.wav")
    reps = int(np.ceil(minutes * 60 * 16000 / len(sample)))
    return np.tile(sample, reps)[: int(minutes * 60 * 16000)]


def bench_rtf(model: EmbeddingModel, minutes: float, label: str) -> None:
    from voiceflow.config import EngineConfig
    from voiceflow.pipeline import Diarizer
    from voiceflow.selection import stream_audio

    audio = long_recording(minutes)
    t0 = time.perf_counter()
    Diarizer(embedding_model=model).diarize(audio)
    offline = time.perf_counter() - t0
    t0 = time.perf_counter()
    stream_audio(audio, model, EngineConfig())
    streaming = time.perf_counter() - t0
    seconds = len(audio) / 16000
    print(
        f"{label:<14} {minutes:.0f}-min file: offline {offline:6.1f} s (RTF {offline / seconds:.4f}), "
        f"streaming {streaming:6.1f} s (RTF {streaming / seconds:.4f})"
    )


def der_side_by_side(models: dict[str, EmbeddingModel]) -> None:
    from pipelines.evaluation.devsets import evaluate_sets, format_table, load_dev_sets
    from voiceflow.pipeline import Diarizer

    sets = load_dev_sets()
    results = {}
    for label, model in models.items():
        diarizer = Diarizer(embedding_model=model)

        def run(audio: np.ndarray, _count: int, d: Diarizer = diarizer) -> list[Segment]:
            return d.diarize(audio)

        results[label] = evaluate_sets(sets, run)
    print(format_table(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--rtf-minutes", type=float, default=10.0)
    parser.add_argument("--der", action="store_true")
    args = parser.parse_args()
    print(f"host: {os.cpu_count()} cores; onnxruntime intra-op threads = 1; windows of 1.6 s at 16 kHz")
    fp32 = EmbeddingModel.load(args.model, threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        int8_path = quantize_int8(Path(args.model), Path(tmp) / "int8.onnx")
        int8 = EmbeddingModel.load(int8_path, threads=1)
        print(
            f"model sizes: fp32 {Path(args.model).stat().st_size / 1e6:.2f} MB, "
            f"int8 {int8_path.stat().st_size / 1e6:.2f} MB"
        )
        t_fp32 = bench_embedding(fp32, args.windows, "fp32")
        t_int8 = bench_embedding(int8, args.windows, "int8")
        print(f"int8 speed-up (median batch-1 latency): {t_fp32 / t_int8:.2f}x")
        if args.rtf_minutes > 0:
            bench_rtf(fp32, args.rtf_minutes, "fp32")
            bench_rtf(int8, args.rtf_minutes, "int8")
        if args.der:
            der_side_by_side({"fp32": fp32, "int8": int8})


if __name__ == "__main__":
    main()
