"""Offline throughput: CPU seconds per audio second of `voiceflow batch` over a folder of long files.

Builds FILES recordings of MINUTES each from the shared AMI excerpts (each file a different
rotation of the meetings, so speakers change along it) and measures, in process CPU seconds (user +
system, every process: the machine is shared, so wall time says more about the neighbours):

1. `voiceflow batch DIR --workers W` as a subprocess: CPU per audio second, files per core-hour and
   per wall-hour, speed over real time;
2. `voiceflow diarize` of the first file alone (one process, as a user runs it), and the batch's
   ratio to it;
3. the fixed cost of a run (`voiceflow batch` of a 1-second file, one worker: start-up, model load);
4. with --profile, the stages of one worker's first group in this process, as a worker runs them
   (one BLAS thread; the group's VAD as one run): audio decode, VAD, embedding, clustering, the
   rest (windows, votes, segments).

    .venv/bin/python benchmarks/bench_batch_throughput.py --profile      # 8 files x 10 min, 1 worker per CPU
    .venv/bin/python benchmarks/bench_batch_throughput.py --files 4 --minutes 10 --workers 2

Prints figures, never asserts on them (timings depend on the machine and its load).
"""

from __future__ import annotations

import os

# This process's own measurement (--profile) runs as a batch worker does: one BLAS/OpenMP thread
# (pipelines.batch.runner.one_thread_per_worker). Read when numpy loads, so set before it is imported;
# the subprocesses get the environment the user gave this one.
USER_ENV = dict(os.environ)
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ami-excerpts"
SR = 16000
sys.path.insert(0, str(ROOT))

from pipelines.evaluation.machine import describe  # noqa: E402


def build_files(folder: Path, files: int, minutes: float) -> float:
    """FILES wavs of MINUTES each; returns the total audio seconds."""
    import soundfile as sf

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
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=USER_ENV)
    return children_cpu() - cpu0, time.monotonic() - t0


class StageClock:
    """CPU seconds (this process) spent inside named functions, by wrapping them where they are called."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(stage, time.process_time() - started)

        return timed_call

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds


def profile_group(folder: Path, workers: int) -> dict[str, float]:
    """One worker's first group (as pipelines.batch.runner forms it), stage by stage, in this
    process; CPU seconds per audio second by stage, and 'files' in the group."""
    import voiceflow.pipeline as pipeline
    from pipelines.batch.groups import audio_seconds, group_jobs
    from pipelines.batch.jobs import discover
    from voiceflow.audio import load_audio
    from voiceflow.config import EngineConfig
    from voiceflow.embedding import EmbeddingModel
    from voiceflow.selection import make_offline_diarizer

    jobs = discover(folder)
    group = group_jobs(jobs, [audio_seconds(j.path) for j in jobs], workers)[0]
    diarizer = make_offline_diarizer(EngineConfig(), EmbeddingModel.load(None))
    assert isinstance(diarizer, pipeline.Diarizer), "the profile follows the default (embedding) pipeline"
    clock = StageClock()
    # The names Diarizer.diarize calls, wrapped where it looks them up.
    saved = (pipeline.embed_plan, pipeline.cluster_embeddings)
    pipeline.embed_plan = clock.wrap("embedding", pipeline.embed_plan)
    pipeline.cluster_embeddings = clock.wrap("clustering", pipeline.cluster_embeddings)
    try:
        started = time.process_time()
        audio = [load_audio(job.path) for job in group]
        clock.add("audio decode", time.process_time() - started)
        started = time.process_time()
        speeches = diarizer.speech_per_recording(audio)
        clock.add(f"VAD ({len(group)} files, one run)", time.process_time() - started)
        started = time.process_time()
        for samples, speech in zip(audio, speeches, strict=True):
            diarizer.diarize(samples, speech=speech)
        diarize_cpu = time.process_time() - started
    finally:
        pipeline.embed_plan, pipeline.cluster_embeddings = saved
    clock.add("rest (windows, votes)", diarize_cpu - clock.seconds["embedding"] - clock.seconds["clustering"])
    seconds = sum(len(a) for a in audio) / SR
    return {stage: cpu / seconds for stage, cpu in clock.seconds.items()} | {"files": float(len(group))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--profile", action="store_true", help="also split one worker's group into stages")
    args = ap.parse_args()

    voiceflow = str(Path(sys.executable).parent / "voiceflow")
    print(f"machine: {describe('load average before')}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "in", Path(tmp) / "out"
        folder.mkdir()
        audio_s = build_files(folder, args.files, args.minutes)
        file_s = args.minutes * 60
        cpu, wall = timed([voiceflow, "batch", str(folder), "--out-dir", str(out), "--workers", str(args.workers)])
        batch = cpu / audio_s
        print(
            f"voiceflow batch: {args.files} files x {args.minutes:g} min, {args.workers} workers: "
            f"{batch:.4f} CPU-s per audio s (all processes, start-up included); "
            f"{3600 / (batch * file_s):.0f} files per core-hour; "
            f"{args.files * 3600 / wall:.0f} files per hour here ({wall:.1f} s wall, {audio_s / wall:.0f}x real time)",
            flush=True,
        )
        first = sorted(folder.glob("*.wav"))[0]
        cpu1, wall1 = timed([voiceflow, "diarize", str(first), "--out-dir", str(Path(tmp) / "one"), "--quiet"])
        single = cpu1 / file_s
        print(
            f"voiceflow diarize (one file, one process): {single:.4f} CPU-s per audio s "
            f"(start-up and model load included), {file_s / wall1:.0f}x real time; "
            f"batch / diarize = {batch / single:.2f}",
            flush=True,
        )
        tiny = Path(tmp) / "tiny"
        tiny.mkdir()
        import soundfile as sf

        sf.write(tiny / "second.wav", np.zeros(SR, dtype=np.float32), SR)
        fixed, _ = timed([voiceflow, "batch", str(tiny), "--out-dir", str(Path(tmp) / "tiny-out"), "--workers", "1"])
        print(f"fixed cost of a run (1 s of audio, one worker): {fixed:.2f} CPU-s", flush=True)
        if args.profile:
            stages = profile_group(folder, args.workers)
            files = int(stages.pop("files"))
            print(f"one worker's first group ({files} files), CPU-s per audio s by stage (one BLAS thread):")
            for stage, share in stages.items():
                print(f"  {stage:<24} {share:.5f}")
            print(f"  {'total':<24} {sum(stages.values()):.5f}")
    print(f"load average after {os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
