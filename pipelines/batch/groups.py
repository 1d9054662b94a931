"""Which files a batch worker diarizes together.

A worker runs the VAD of the files it holds as one model run (voiceflow.vad.recording_probabilities:
the encoder over all their frames, the recurrent decoder with a row per file): 0.0011 CPU-s per
audio second alone, 0.0007 with 2 to 8 files (the decoder's LSTM steps are shared by the rows of a
call). Groups are also the unit a worker loads, reports and is retried on. Groups are bounded in files
and in audio seconds: files x the longest of them, since a worker holds its group's samples (4 bytes
each) and the VAD's features laid out to the longest (~2 bytes per sample: ~350 MB for an hour in
all). There are enough groups, in a multiple of the workers, that no worker idles while another has
several left.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from pipelines.batch.jobs import Job

GROUP_FILES = 8
GROUP_SECONDS = 3600.0


def audio_seconds(path: Path) -> float | None:
    """The file's duration from its header; None when its header does not say (or is unreadable:
    the worker reports why)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:  # a file the decoder cannot open is the worker's to report, with its reason
        return None
    return float(info.duration) if info.frames > 0 and info.samplerate > 0 else None


def group_size(files: int, workers: int, max_files: int = GROUP_FILES) -> int:
    """Files per group: at most `max_files`, and a multiple of `workers` groups, as even as they go."""
    if files <= 0:
        return 1
    size = max(1, min(max_files, math.ceil(files / max(1, workers))))
    groups = math.ceil(files / size)
    groups = math.ceil(groups / workers) * workers  # every worker gets as many groups as the others
    return max(1, math.ceil(files / groups))


def group_jobs(
    jobs: Sequence[Job],
    seconds: Sequence[float | None],
    workers: int,
    max_files: int = GROUP_FILES,
    max_seconds: float = GROUP_SECONDS,
) -> list[list[Job]]:
    """Consecutive jobs in groups of at most `group_size` files whose count times the longest is at
    most `max_seconds` (`seconds`: each job's duration). A file of unknown length, or longer than
    `max_seconds`, goes alone."""
    size = group_size(len(jobs), workers, max_files)
    groups: list[list[Job]] = []
    current: list[Job] = []
    longest = 0.0
    for job, length in zip(jobs, seconds, strict=True):
        if length is None or length > max_seconds:
            if current:
                groups.append(current)
            groups.append([job])
            current, longest = [], 0.0
            continue
        if current and (len(current) >= size or (len(current) + 1) * max(longest, length) > max_seconds):
            groups.append(current)
            current, longest = [], 0.0
        current.append(job)
        longest = max(longest, length)
    if current:
        groups.append(current)
    return groups
