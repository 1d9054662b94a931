"""Segmentation pipeline speed: the model, and the streaming loop's per-step cost beside the embedding pipeline's.

    .venv/bin/python benchmarks/bench_segmentation.py [--segmentation-model M] [--audio WAV] [--seconds S]

Prints:
  * the segmentation model's size (bytes; parameters when its `.json` sidecar has them) and its
    latency per 5 s chunk at batch 1 on one onnxruntime thread (p50/p95/p99);
  * for both pipelines on the same audio, fed in 0.5 s blocks like `voiceflow diarize --streaming`
    and the pod: the per-step cost (one feed = one 0.5 s step) split into
      segmentation pipeline: segmentation network / local-speaker embeddings / clustering+aggregation
      embedding pipeline:    VAD                  / window embeddings       / clustering+decisions
    (p50/p95/p99 per step, total and share of the loop), and each pipeline's real-time factor.
The split is measured by wrapping the sessions' collaborators (the VAD, the segmentation block's
network call, the embed callable, the local-embedding function the block calls), never by editing the sessions; the
third part is the rest of each step. Timings are figures only, never asserted (the machine is shared).

The segmentation model defaults to VOICEFLOW_SEGMENTATION_MODEL_PATH, else the bundled one, else
the newest export under runs/ (until one is bundled). The audio defaults to the shared AMI dev
excerpts (../shared/data/ami-excerpts/dev*.wav, concatenated), else tests/data/dev00.wav.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pod_process import segmentation_model_file  # noqa: E402

from pipelines.evaluation.machine import describe  # noqa: E402
from voiceflow import STREAM_FEED_SAMPLES as STREAM_CHUNK  # noqa: E402
from voiceflow.config import EngineConfig  # noqa: E402
from voiceflow.embedding import EmbeddingModel  # noqa: E402
from voiceflow.segmentation import blocks as seg_blocks  # noqa: E402
from voiceflow.segmentation.model import SegmentationModel  # noqa: E402
from voiceflow.selection import make_streaming_session  # noqa: E402


def pct(samples: list[float] | np.ndarray) -> str:
    values = np.asarray(samples, dtype=np.float64) * 1000.0
    if values.size == 0:
        return "p50    n/a       p95    n/a       p99    n/a"
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return f"p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  p99 {p99:7.2f} ms"


class Clock:
    """Accumulates the time spent in wrapped calls since the last `take()`."""

    def __init__(self) -> None:
        self.spent = 0.0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent += time.perf_counter() - t0

        return timed

    def take(self) -> float:
        spent, self.spent = self.spent, 0.0
        return spent


class TimedVAD:
    def __init__(self, vad: Any, clock: Clock) -> None:
        self._vad = vad
        self.feed = clock.wrap(vad.feed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._vad, name)


def model_report(seg: SegmentationModel, path: Path, chunks: int) -> dict[str, Any]:
    size = path.stat().st_size
    raw_params = seg.metadata.get("parameters")
    params = int(raw_params) if isinstance(raw_params, int | float | str) else 0
    print(f"segmentation model: {path}")
    print(
        f"  size {size:,} bytes ({size / 1e6:.2f} MB)"
        + (f", {int(params):,} parameters ({size / int(params):.2f} bytes/parameter)" if params else "")
        + f", version {seg.version}"
    )
    rng = np.random.default_rng(0)
    batch = (0.05 * rng.standard_normal((chunks, seg.chunk_samples))).astype(np.float32)
    seg.log_probs(batch[:1])  # warm-up
    raw, decoded = [], []
    for i in range(chunks):
        t0 = time.perf_counter()
        seg.log_probs(batch[i : i + 1])
        raw.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        seg.activity(batch[i : i + 1])
        decoded.append(time.perf_counter() - t0)
    chunk_s = seg.chunk_samples / 16000
    print(f"  per {chunk_s:g} s chunk, batch 1, 1 onnxruntime thread ({chunks} chunks):")
    print(f"    network        {pct(raw)}  ->  {chunk_s / np.median(raw):7.0f}x real time")
    print(f"    + powerset     {pct(decoded)}  (activity(): decode to hard/soft)")
    return {"bytes": size, "parameters": params, "chunk_ms_p50": 1000 * float(np.median(raw))}


def run_stream(pipeline: str, audio: np.ndarray, emb: EmbeddingModel, seg: SegmentationModel | None) -> dict[str, Any]:
    """Feed `audio` in STREAM_CHUNK blocks; per block: total, and the three parts."""
    config = EngineConfig(pipeline=pipeline)
    first, second = Clock(), Clock()  # segmentation|VAD, embeddings
    embed_clock = Clock()
    session: Any = make_streaming_session(config, emb, embed=embed_clock.wrap(emb.embed), segmentation_model=seg)
    original = seg_blocks.embed_local_speakers
    if pipeline == "segmentation":
        session.segmentation.segment = first.wrap(session.segmentation.segment)  # the network block's call
        seg_blocks.embed_local_speakers = second.wrap(original)  # what the local-embedding block calls
        names = ("segmentation", "local embeddings", "clustering+aggregation")
    else:
        session.speech.vad = TimedVAD(session.speech.vad, first)  # the speech block's VAD
        names = ("VAD", "window embeddings", "clustering+decisions")
    totals, parts_a, parts_b = [], [], []
    try:
        for start in range(0, len(audio), STREAM_CHUNK):
            block = audio[start : start + STREAM_CHUNK]
            t0 = time.perf_counter()
            session.feed(block)
            totals.append(time.perf_counter() - t0)
            parts_a.append(first.take())
            # embedding pipeline: the embed calls are its embedding part; segmentation pipeline:
            # the whole local-embedding function (window cutting + embed calls)
            embedded = embed_clock.take()
            local = second.take()
            parts_b.append(local if pipeline == "segmentation" else embedded)
        t0 = time.perf_counter()
        segments = session.finish()
        finish = time.perf_counter() - t0
        first.take()
        second.take()
        embed_clock.take()
    finally:
        seg_blocks.embed_local_speakers = original
    total = np.array(totals)
    a, b = np.array(parts_a), np.array(parts_b)
    rest = np.maximum(total - a - b, 0.0)
    seconds = len(audio) / 16000
    elapsed = float(total.sum()) + finish
    print(f"\n{pipeline} pipeline, streaming ({len(totals)} steps of {STREAM_CHUNK / 16000:g} s):")
    print(f"  {'step total':<24} {pct(total)}  sum {total.sum():7.2f} s")
    for name, part in zip(names, (a, b, rest), strict=True):
        share = part.sum() / max(total.sum(), 1e-12)
        print(f"  {name:<24} {pct(part)}  sum {part.sum():7.2f} s  ({100 * share:5.1f} % of the loop)")
    print(
        f"  finish {finish * 1000:.1f} ms; {len(segments)} segments, {session.num_speakers} speakers; "
        f"RTF {elapsed / seconds:.4f} ({seconds / elapsed:.0f}x real time)"
    )
    return {
        "pipeline": pipeline,
        "steps": len(totals),
        "step_p50_ms": 1000 * float(np.median(total)),
        "step_p99_ms": 1000 * float(np.percentile(total, 99)),
        "parts_s": {n: float(p.sum()) for n, p in zip(names, (a, b, rest), strict=True)},
        "rtf": elapsed / seconds,
        "segments": len(segments),
    }


def default_audio() -> list[str]:
    """The shared AMI dev excerpts when present (real meeting speech, with overlap), else the repo's."""
    ami = sorted((ROOT.parent / "shared" / "data" / "ami-excerpts").glob("dev*.wav"))
    return [str(f) for f in ami] or [str(ROOT / "tests" / "data" / "dev00.wav")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--segmentation-model", default=None, help="segmentation .onnx (default: see above)")
    ap.add_argument("--model", default=None, help="embedding model (default: the bundled one)")
    ap.add_argument("--audio", nargs="+", default=default_audio(), help="speech to stream (files are concatenated)")
    ap.add_argument("--seconds", type=float, default=120.0, help="stream at most this much of the audio")
    ap.add_argument("--chunks", type=int, default=100, help="5 s chunks timed for the model latency")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    seg_path = segmentation_model_file(args.segmentation_model)
    if seg_path is None:
        raise SystemExit("no segmentation model: give --segmentation-model or VOICEFLOW_SEGMENTATION_MODEL_PATH")
    from voiceflow.audio import load_audio

    print(f"machine: {describe()} (shared: timings are noisy)")
    seg = SegmentationModel.load(seg_path, threads=1)
    emb = EmbeddingModel.load(args.model, threads=1)
    report: dict[str, Any] = {"model": model_report(seg, Path(seg.path), args.chunks)}
    audio = np.concatenate([load_audio(f) for f in args.audio])[: int(args.seconds * 16000)]
    names = ", ".join(Path(f).name for f in args.audio)
    print(f"\naudio: {names} ({len(audio) / 16000:.1f} s); embedding model {emb.version}, 1 thread")
    runs = [run_stream("embedding", audio, emb, None), run_stream("segmentation", audio, emb, seg)]
    report["streaming"] = runs
    e, s = runs
    print(
        f"\nsegmentation / embedding pipeline: step p50 {s['step_p50_ms'] / max(e['step_p50_ms'], 1e-9):.2f}x, "
        f"step p99 {s['step_p99_ms'] / max(e['step_p99_ms'], 1e-9):.2f}x, RTF {s['rtf'] / e['rtf']:.2f}x"
    )
    print(f"load average after {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
