"""`voiceflow batch`: diarize many files with a process pool.

- Resumable: a file whose RTTM exists is skipped (RTTMs are written atomically, so an existing
  one is always complete).
- Failure-isolated: each file's errors are caught in the worker and recorded; a worker that
  dies outright (a native crash) only costs the files it held, which are retried one per
  fresh worker so the culprit is identified and everything else still runs.
- A summary (printed, and summary.json in the output folder) lists every file's outcome.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipelines.batch.jobs import Job, discover

_DIARIZER: Any = None  # one per worker process, built by _init_worker


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


def diarize_job(job: Job, out_dir: Path) -> JobResult:
    """Runs in a worker: never raises, a failure is a result like any other."""
    from voiceflow.audio import load_audio
    from voiceflow.rttm import segments_to_rttm

    started = time.monotonic()
    try:
        audio = load_audio(job.path)
        segments = _DIARIZER.diarize(audio, num_speakers=job.num_speakers)
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
        message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        return JobResult(job.uri, str(job.path), "failed", time.monotonic() - started, error=message)


def _run_pool(
    jobs: list[Job], out_dir: Path, choice: EngineChoice, workers: int
) -> tuple[list[JobResult], list[Job]]:
    """Results of the jobs that finished, and the jobs lost to a broken pool."""
    context = multiprocessing.get_context("spawn")  # no inherited onnxruntime/torch threads
    results: list[JobResult] = []
    lost: list[Job] = []
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(choice,)
    ) as pool:
        futures: list[tuple[Job, Future[JobResult]]] = [
            (j, pool.submit(diarize_job, j, out_dir)) for j in jobs
        ]
        for job, future in futures:
            try:
                result = future.result()
            except BrokenProcessPool:
                lost.append(job)
                continue
            print(
                f"[{result.status:>6}] {job.uri}" + (f"  ({result.error})" if result.error else ""),
                flush=True,
            )
            results.append(result)
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
        for job in lost:  # one fresh worker each: a file that kills its worker fails alone
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
