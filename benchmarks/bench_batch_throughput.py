"""Offline throughput: CPU seconds per audio second of `voiceflow batch` over a folder of long files.

Builds FILES recordings of MINUTES each from the shared AMI excerpts (each file a different
rotation of the meetings, so speakers change along it), runs `voiceflow batch DIR --workers W`
as a subprocess and prints its CPU time (all its processes) per second of audio, the wall-clock
speed-up over real time, and the same for one `voiceflow diarize` of the first file. With
--profile it also splits one file's offline diarization into VAD / embedding / clustering CPU.

    .venv/bin/python benchmarks/bench_batch_throughput.py                 # 4 files x 10 min, 2 workers
    .venv/bin/python benchmarks/bench_batch_throughput.py --files 2 --minutes 10 --workers 2 --profile

Prints figures, never asserts on them (timings depend on the machine and its load).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ami-excerpts"
SR = 16000


def build_files(folder: Path, files: int, minutes: float) -> float:
    """FILES wavs of MINUTES each; returns the total audio seconds."""
    import soundfile as sf

    sys.path.insert(0, str(ROOT))
    from voiceflow.audio import load_audio

    clips = [load_audio(p) for p in sorted(DATA.glob("*.wav"))]
    if not clips:
        raise SystemExit(f"no audio in {DATA}")
    samples = int(minutes * 60 * SR)
    for i in range(files):
        order = clips[i % len(clips) :] + clips[: i % len(clips)]
        audio = np.resize(np.concatenate(order), samples)
        sf.write(folder / f"long{i:02d}.wav", audio, SR, subtype="PCM_16")
    return files * samples / SR


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str]) -> tuple[float, float]:
    """(CPU seconds of the command and all its processes, wall seconds)."""
    cpu0, t0 = children_cpu(), time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return children_cpu() - cpu0, time.monotonic() - t0


def profile_one(path: Path) -> None:
    """One file's offline diarization in this process, CPU split by stage (cProfile cumulative)."""
    import cProfile
    import pstats

    sys.path.insert(0, str(ROOT))
    from voiceflow.audio import load_audio
    from voiceflow.config import EngineConfig
    from voiceflow.embedding import EmbeddingModel
    from voiceflow.selection import make_offline_diarizer

    audio = load_audio(path)
    diarizer = make_offline_diarizer(EngineConfig(), EmbeddingModel.load(None))
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    diarizer.diarize(audio)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    seconds = audio.size / SR

    def cumulative(fragment: str) -> float:
        return max(
            (v[3] for k, v in stats.stats.items() if fragment in f"{k[0]}:{k[2]}"),  # type: ignore[attr-defined]
            default=0.0,
        )

    print(f"profile of {path.name} ({seconds:.0f} s), CPU s per audio s by stage:")
    for stage, fragment in (
        ("VAD (Silero)", "vad.py:probabilities"),
        ("embedding", "embedding.py:read_windows"),
        ("embedding (windows)", "embedding.py:embed_batched"),
        ("clustering", "clustering/offline.py:cluster_embeddings"),
    ):
        share = cumulative(fragment)
        if share:
            print(f"  {stage:<22} {share / seconds:.4f}")
    print(f"  {'total':<22} {total / seconds:.4f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--profile", action="store_true", help="also split one file's CPU by stage")
    args = ap.parse_args()

    voiceflow = str(Path(sys.executable).parent / "voiceflow")
    print(f"machine: {os.cpu_count()} CPUs, load average before {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "in", Path(tmp) / "out"
        folder.mkdir()
        audio_s = build_files(folder, args.files, args.minutes)
        cpu, wall = timed([voiceflow, "batch", str(folder), "--out-dir", str(out), "--workers", str(args.workers)])
        print(
            f"voiceflow batch: {args.files} files x {args.minutes:g} min, {args.workers} workers: "
            f"{cpu / audio_s:.4f} CPU-s per audio s, {audio_s / wall:.0f}x real time ({wall:.1f} s wall)",
            flush=True,
        )
        first = sorted(folder.glob("*.wav"))[0]
        cpu1, wall1 = timed([voiceflow, "diarize", str(first), "--out-dir", str(Path(tmp) / "one")])
        one_s = args.minutes * 60
        print(
            f"voiceflow diarize (one file, one process): {cpu1 / one_s:.4f} CPU-s per audio s "
            f"(incl. start-up and model load), {one_s / wall1:.0f}x real time",
            flush=True,
        )
        if args.profile:
            profile_one(first)
    print(f"load average after {os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
