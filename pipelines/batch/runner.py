"""`voiceflow batch`: diarize many files with a process pool.

- Resumable: a file whose RTTM exists is skipped (RTTMs are written atomically, so an existing
  one is always complete).
- Failure-isolated: each file's errors are caught in the worker and recorded; a worker that
  dies outright (a native crash) only costs the files it held, which are retried one per
  fresh worker so the culprit is identified and everything else still runs.
- A summary (printed, and summary.json in the output folder) lists every file's outcome.
- Throughput: one single-threaded worker per core, each given a few files at a time whose VAD
  runs as one model run (pipelines.batch.groups); every RTTM is the one the file gets alone.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.batch.groups import audio_seconds, group_jobs
from pipelines.batch.jobs import Job, discover

if TYPE_CHECKING:
    from voiceflow.vad import Speech

_DIARIZER: Any = None  # one per worker process, built by _init_worker
# Read by OpenBLAS, OpenMP and MKL when a worker loads them (one_thread_per_worker).
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class JobResult:
    uri: str
    path: str
    status: str  # "ok" | "skipped" | "failed"
    seconds: float = 0.0
    audio_seconds: float = 0.0
    speakers: int = 0
    error: str = ""


@dataclass
class BatchSummary:
    results: list[JobResult] = field(default_factory=list)
    wall_seconds: float = 0.0
    # The model bundle every file was diarized with: {"path", "bundle_digest", "parts"}.
    model: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return sum(r.status == "ok" for r in self.results)

    @property
    def skipped(self) -> int:
        return sum(r.status == "skipped" for r in self.results)

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        audio = sum(r.audio_seconds for r in self.results)
        return {
            "total": len(self.results),
            "ok": self.ok,
            "skipped": self.skipped,
            "failed": self.failed,
            "model": self.model,
            "audio_seconds": round(audio, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "real_time_factor": round(self.wall_seconds / audio, 4) if audio else None,
            "files": [asdict(r) for r in self.results],
        }


@dataclass(frozen=True)
class EngineChoice:
    """What every worker loads: the embedding model and the pipeline (with its segmentation model)."""

    model: str | None = None
    pipeline: str | None = None  # None = the engine's default pipeline
    segmentation_model: str | None = None


def _init_worker(choice: EngineChoice) -> None:
    global _DIARIZER
    from dataclasses import replace

    from voiceflow.config import EngineConfig
    from voiceflow.embedding import EmbeddingModel
    from voiceflow.selection import load_segmentation_model, make_offline_diarizer

    config = EngineConfig() if choice.pipeline is None else replace(EngineConfig(), pipeline=choice.pipeline)
    segmentation = load_segmentation_model(config, choice.segmentation_model)
    _DIARIZER = make_offline_diarizer(config, EmbeddingModel.load(choice.model), segmentation)


def diarize_group(jobs: list[Job], out_dir: Path) -> list[JobResult]:
    """Runs in a worker: the group's files loaded, their VAD in one model run (pipelines.batch.groups),
    then each diarized and written. Never raises: a failure is that file's result like any other."""
    from voiceflow.audio import load_audio

    results: dict[str, JobResult] = {}
    loaded: list[tuple[Job, np.ndarray, float]] = []
    for job in jobs:
        started = time.monotonic()
        try:
            loaded.append((job, load_audio(job.path), time.monotonic() - started))
        except Exception as exc:  # one file's problem is that file's result, never the run's
            results[job.uri] = _failed(job, exc, time.monotonic() - started)
    speeches, vad_seconds = _recordings_speech([audio for _, audio, _ in loaded])
    total = sum(len(audio) for _, audio, _ in loaded) or 1
    while loaded:
        job, audio, load_seconds = loaded.pop(0)  # its samples are released once it is written
        speech = speeches.pop(0)
        shared = load_seconds + vad_seconds * len(audio) / total  # its part of the group's VAD
        results[job.uri] = diarize_job(job, out_dir, audio, speech, shared)
    return [results[job.uri] for job in jobs]


def _recordings_speech(recordings: list[np.ndarray]) -> tuple[list[Speech | None], float]:
    """The recordings' speech in one VAD run when the pipeline has a VAD (and the run
    works); otherwise None each, and each file's diarization runs its own."""
    from voiceflow.pipeline import Diarizer

    started = time.monotonic()
    if len(recordings) > 1 and isinstance(_DIARIZER, Diarizer):
        try:
            return list(_DIARIZER.speech_per_recording(recordings)), time.monotonic() - started
        except Exception:  # e.g. memory: each file then runs its own VAD and reports its own error
            pass
    return [None] * len(recordings), 0.0


def diarize_job(
    job: Job, out_dir: Path, audio: np.ndarray, speech: Speech | None = None, spent: float = 0.0
) -> JobResult:
    """One loaded file diarized (with its speech when the group's VAD made it) and its RTTM
    written atomically; `spent`: seconds already spent on it (loading, its share of the VAD)."""
    from voiceflow.rttm import segments_to_rttm

    started = time.monotonic() - spent
    try:
        segments = _DIARIZER.diarize(audio, num_speakers=job.num_speakers, speech=speech)
        target = out_dir / f"{job.uri}.rttm"
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        tmp.write_text(segments_to_rttm(segments, job.uri))
        os.replace(tmp, target)
        return JobResult(
            job.uri,
            str(job.path),
            "ok",
            time.monotonic() - started,
            len(audio) / 16000.0,
            len({s.speaker for s in segments}),
        )
    except Exception as exc:  # any one file's problem is that file's result, never the run's
        return _failed(job, exc, time.monotonic() - started)


def _failed(job: Job, exc: Exception, seconds: float) -> JobResult:
    message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    return JobResult(job.uri, str(job.path), "failed", seconds, error=message)


@contextmanager
def one_thread_per_worker() -> Iterator[None]:
    """Workers start with one BLAS/OpenMP thread each (onnxruntime's sessions already run one):
    the pool is the parallelism, one process per core. A BLAS pool of its own in every worker
    spins on cores the other workers are using; it quadrupled the clustering's CPU (docs/deploy.md).
    A thread count the user set is kept. Spawned workers read the variables when they start."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run_pool(jobs: list[Job], out_dir: Path, choice: EngineChoice, workers: int) -> tuple[list[JobResult], list[Job]]:
    """Results of the jobs that finished, and the jobs lost to a broken pool."""
    context = multiprocessing.get_context("spawn")  # no inherited onnxruntime/torch threads
    results: list[JobResult] = []
    lost: list[Job] = []
    groups = group_jobs(jobs, [audio_seconds(j.path) for j in jobs], workers)
    with (
        one_thread_per_worker(),
        ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(choice,)) as pool,
    ):
        futures: list[tuple[list[Job], Future[list[JobResult]]]] = [
            (group, pool.submit(diarize_group, group, out_dir)) for group in groups
        ]
        for group, future in futures:
            try:
                finished = future.result()
            except BrokenProcessPool:
                lost.extend(group)
                continue
            for result in finished:
                print(
                    f"[{result.status:>6}] {result.uri}" + (f"  ({result.error})" if result.error else ""),
                    flush=True,
                )
            results.extend(finished)
    return results, lost


def model_identity(model: str | None) -> dict[str, Any]:
    """The bundle a run diarizes with (a folder means what it serves: an active-model folder's
    `current`), verified once up front so a broken bundle fails the run before any file."""
    from voiceflow.bundle import model_file_in, verify_bundle
    from voiceflow.embedding import default_model_path

    bundle = verify_bundle(model_file_in(Path(model)) if model else default_model_path())
    return {"path": str(bundle.model_path), "bundle_digest": bundle.digest, "parts": bundle.roles}


def run_batch(
    input_path: Path,
    out_dir: Path,
    *,
    model: str | None = None,
    workers: int = 2,
    num_speakers: int | None = None,
    overwrite: bool = False,
    pipeline: str | None = None,
    segmentation_model: str | None = None,
) -> BatchSummary:
    started = time.monotonic()
    identity = model_identity(model)
    # Every worker loads the bundle that was verified, even if a folder's `current` moves meanwhile.
    choice = EngineChoice(identity["path"], pipeline, segmentation_model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = discover(input_path, num_speakers)
    done = {j.uri for j in jobs if not overwrite and (out_dir / f"{j.uri}.rttm").is_file()}
    summary = BatchSummary([JobResult(j.uri, str(j.path), "skipped") for j in jobs if j.uri in done])
    summary.model = identity
    todo = [j for j in jobs if j.uri not in done]
    if todo:
        results, lost = _run_pool(todo, out_dir, choice, max(1, min(workers, len(todo))))
        summary.results.extend(results)
        for job in lost:  # one fresh worker each: a file that kills its worker (and its group) fails alone
            retried, still_lost = _run_pool([job], out_dir, choice, 1)
            summary.results.extend(retried)
            summary.results.extend(
                JobResult(j.uri, str(j.path), "failed", error="worker process crashed") for j in still_lost
            )
    order = {j.uri: i for i, j in enumerate(jobs)}
    summary.results.sort(key=lambda r: order.get(r.uri, 0))
    summary.wall_seconds = time.monotonic() - started
    (out_dir / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    print(format_summary(summary))
    return summary


def format_summary(summary: BatchSummary) -> str:
    d = summary.to_dict()
    lines = [
        f"batch: {d['total']} files: {d['ok']} ok, {d['skipped']} skipped (already done), "
        f"{d['failed']} failed; "
        f"{d['audio_seconds']:.1f} s of audio in {d['wall_seconds']:.1f} s"
    ]
    lines += [f"  failed: {r.path}: {r.error}" for r in summary.results if r.status == "failed"]
    return "\n".join(lines)
