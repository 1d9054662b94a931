"""How `voiceflow batch` hands files to its workers: bounded groups, even across workers, order kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from pipelines.batch.groups import audio_seconds, group_jobs, group_size
from pipelines.batch.jobs import Job


def jobs(n: int) -> list[Job]:
    return [Job(Path(f"f{i}.wav"), f"f{i}") for i in range(n)]


def sizes(groups: list[list[Job]]) -> list[int]:
    return [len(g) for g in groups]


def test_group_size_fills_every_worker_evenly() -> None:
    assert group_size(4, 2) == 2  # one group each
    assert group_size(16, 2) == 8  # one group of 8 each
    assert group_size(17, 2) == 5  # 4 groups of <= 5, two per worker
    assert group_size(1, 2) == 1
    assert group_size(100, 2, max_files=8) == 8  # at most 8 a group
    assert group_size(12, 4, max_files=8) == 3  # one group per worker, not 8 + 4 for two of four
    assert group_size(0, 2) == 1


def test_groups_keep_order_and_respect_both_bounds() -> None:
    items = jobs(10)
    groups = group_jobs(items, [600.0] * 10, workers=2, max_files=8, max_seconds=1800.0)
    assert [j for g in groups for j in g] == items
    assert all(len(g) <= 3 for g in groups)  # 3 x 10 min fills the 30 min bound
    # unknown or over-long files go alone; the rest still group
    groups = group_jobs(jobs(5), [60.0, None, 60.0, 4000.0, 60.0], workers=1, max_files=8, max_seconds=3600.0)
    assert sizes(groups) == [1, 1, 1, 1, 1]
    groups = group_jobs(jobs(6), [60.0, 60.0, None, 60.0, 60.0, 60.0], workers=1, max_files=8)
    assert sizes(groups) == [2, 1, 3]
    # the lockstep lays every file out to the longest: one long file keeps short ones out
    groups = group_jobs(jobs(5), [60.0, 60.0, 1500.0, 60.0, 60.0], workers=1, max_files=8, max_seconds=3600.0)
    assert sizes(groups) == [2, 2, 1]  # with the 1500 s file, 3 files would count as 4500 s
    groups = group_jobs(jobs(4), [1500.0, 60.0, 60.0, 60.0], workers=1, max_files=8, max_seconds=3600.0)
    assert sizes(groups) == [2, 2]


def test_audio_seconds_reads_the_header(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.wav", np.zeros(24000, dtype=np.float32), 8000)
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    assert audio_seconds(tmp_path / "a.wav") == 3.0
    assert audio_seconds(tmp_path / "bad.wav") is None
    assert audio_seconds(tmp_path / "missing.wav") is None
