"""Training batches, optionally built ahead of time in worker processes.

Batch i is a pure function of (data, config, i): `BatchMaker(i)` draws everything from
`np.random.default_rng([seed, i])`. So which process builds it, and in which order, cannot
change it: a run with `data.workers: 14` trains on exactly the batches of `workers: 0`, and a
resumed run restarts the stream at its step. Workers only buy time: generating a batch (turn
sampling, voiced masks, FFT reverberation) is pure numpy and would otherwise stall a GPU.
"""

from __future__ import annotations

import multiprocessing as mp
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from pipelines.segmentation.augment import AugmentAssets, SegAugmentConfig
from pipelines.segmentation.data import AmiCorpus, make_batch
from pipelines.simulation import ChunkConfig

Batch = tuple[np.ndarray, np.ndarray]  # waveforms [B, samples] float32, labels [B, frames, speakers] uint8


@dataclass(frozen=True)
class BatchMaker:
    """Everything one training batch is made from; callable with the step number."""

    seed: int
    batch_size: int
    pool: list[np.ndarray]
    chunk: ChunkConfig
    snr_db: tuple[float, float]
    augment: SegAugmentConfig
    assets: AugmentAssets
    ami: AmiCorpus | None
    p_ami: float

    def __call__(self, step: int) -> Batch:
        rng = np.random.default_rng([self.seed, step])
        return make_batch(
            self.pool, rng, self.batch_size, self.chunk, self.snr_db, self.augment, self.assets, self.ami, self.p_ami
        )


_MAKER: BatchMaker | None = None  # set once in each worker process


def _init_worker(maker: BatchMaker) -> None:
    global _MAKER
    _MAKER = maker


def _build(step: int) -> Batch:
    assert _MAKER is not None, "worker not initialised"
    return _MAKER(step)


def worker_start_method() -> str:
    """forkserver where the platform has it, else spawn; never a plain fork.

    A plain fork copies the parent mid-flight: with torch's or BLAS's thread pools running (a
    trainer, or a test process that ran torch before), a child can inherit a lock held by a thread
    that does not exist in it and die or hang on its first FFT. That hung the suite once (a worker
    died, the pool waited forever for its batch). Workers started from a clean server cost one
    pickled copy of the voices each and a second of imports, and they cannot inherit a CUDA context.
    """
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


class BatchStream:
    """Batches start..stop-1 in order; with `workers` > 0 built by a process pool that stays at
    most `prefetch` (default 2 per worker) steps ahead, so memory stays bounded on long runs.

    The pool is started (and the first batches queued) in the constructor. A worker that dies
    makes the next batch raise BrokenProcessPool instead of waiting for it forever.
    """

    def __init__(self, maker: BatchMaker, start: int, stop: int, workers: int = 0, prefetch: int | None = None) -> None:
        self.maker, self.next_step, self.stop = maker, start, stop
        self.ahead = max(prefetch if prefetch is not None else 2 * workers, 1)
        self.pending: deque[Future[Batch]] = deque()
        self.pool: ProcessPoolExecutor | None = None
        if workers > 0:
            self.pool = ProcessPoolExecutor(
                workers,
                mp_context=mp.get_context(worker_start_method()),
                initializer=_init_worker,
                initargs=(maker,),
            )
            self._fill()

    def _fill(self) -> None:
        assert self.pool is not None
        while self.next_step < self.stop and len(self.pending) < self.ahead:
            self.pending.append(self.pool.submit(_build, self.next_step))
            self.next_step += 1

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        if self.pool is None:
            if self.next_step >= self.stop:
                raise StopIteration
            self.next_step += 1
            return self.maker(self.next_step - 1)
        self._fill()
        if not self.pending:
            raise StopIteration
        batch = self.pending.popleft().result()
        self._fill()
        return batch

    def close(self) -> None:
        """Stop the workers; batches still queued (an early stop, Ctrl-C) are not needed."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
