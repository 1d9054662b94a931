"""Streams' VAD frames read in one model run (the pod's cross-stream VAD batching) give each stream
exactly the probabilities it gets alone, whatever the mix of lengths and feed sizes."""

from __future__ import annotations

import numpy as np

from tests.real_speech import dev00
from voiceflow.vad import CHUNK, SileroVAD


def test_batched_rows_equal_each_stream_alone() -> None:
    audio = dev00(8)
    # different speech, and different lengths: some streams run out of frames before others
    streams = [np.roll(audio, -7919 * i)[: audio.size - 3000 * i] for i in range(5)]
    alone = [SileroVAD().probabilities(s) for s in streams]
    batched = [SileroVAD(runner=None) for _ in streams]
    model = SileroVAD.shared_model()
    got: list[list[np.ndarray]] = [[] for _ in streams]
    for start in range(0, audio.size, 7000):  # feeds that do not line up with the 512-sample frames
        jobs, fed = [], []
        for i, stream in enumerate(streams):
            piece = np.concatenate([batched[i]._pending, stream[start : start + 7000]])
            n = piece.size // CHUNK
            batched[i]._pending = piece[n * CHUNK :]
            if n:
                jobs.append((piece[: n * CHUNK].reshape(n, CHUNK), batched[i]._state, batched[i]._context))
                fed.append(i)
        for i, (probs, state, context) in zip(fed, model.run(jobs), strict=True):
            got[i].append(probs)
            batched[i]._state, batched[i]._context = state, context
    for mine, reference in zip(got, alone, strict=True):
        assert np.array_equal(np.concatenate(mine), reference)


def test_a_runner_sees_every_frame_once_and_sets_the_state() -> None:
    audio = dev00(8)[: 3 * 16000]
    calls: list[int] = []
    model = SileroVAD.shared_model()

    def runner(job):
        calls.append(len(job[0]))
        return model.run([job, job])[0]  # batched with a copy of itself: same rows

    vad = SileroVAD(runner=runner)
    probs = np.concatenate([vad.feed(audio[i : i + 5000]) for i in range(0, audio.size, 5000)])
    assert sum(calls) == audio.size // CHUNK == probs.size
    assert np.array_equal(probs, SileroVAD().probabilities(audio))
