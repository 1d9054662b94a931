"""The pod hands freed heap back once no stream is receiving audio (inference_pod.memory)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from inference_pod.memory import HeapTrimmer, _glibc_trim
from inference_pod.pod import Pod
from inference_pod.settings import Settings


def test_trims_at_most_once_per_interval() -> None:
    calls: list[int] = []
    trimmer = HeapTrimmer(min_interval=1.0, trim=lambda: calls.append(1))
    assert trimmer.quiet(now=10.0)
    assert not trimmer.quiet(now=10.5)  # a burst of closing streams trims once
    assert trimmer.quiet(now=11.0)
    assert len(calls) == 2


def test_without_glibc_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes.util

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert _glibc_trim() is None
    assert not HeapTrimmer(trim=None).quiet(now=100.0)


def test_glibc_trim_runs_here() -> None:
    trim = _glibc_trim()
    if trim is not None:  # glibc on Linux CI; musl/macOS: nothing to call
        assert trim() in (0, 1)


@dataclass(eq=False)
class _Stream:
    first_audio_at: float | None


def test_the_pod_trims_only_when_no_stream_has_audio() -> None:
    calls: list[int] = []
    pod = Pod(Settings())
    pod.heap = HeapTrimmer(min_interval=0.0, trim=lambda: calls.append(1))
    talking = _Stream(first_audio_at=1.0)
    idle = _Stream(first_audio_at=None)
    pod.connections = {talking, idle}  # type: ignore[arg-type]
    pod.stream_ended()
    assert calls == []  # one stream still receives audio: its buffers are in use
    pod.connections = {idle}  # type: ignore[arg-type]
    pod.stream_ended()
    assert calls == [1]
