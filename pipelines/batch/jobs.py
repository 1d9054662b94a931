"""What a batch run works on: input discovery (folder or manifest) and output naming."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif")


@dataclass(frozen=True)
class Job:
    path: Path
    uri: str  # unique per run; also the RTTM file stem
    num_speakers: int | None = None


def uri_for(path: Path, root: Path) -> str:
    """A flat, whitespace-free name from the path relative to the input root (sub/a.wav -> sub__a)."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(path.name)
    stem = "__".join([*rel.parent.parts, rel.stem])
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem) or "audio"


def discover(input_path: Path, num_speakers: int | None = None) -> list[Job]:
    """A folder (audio files, recursively, sorted) or a .txt / .jsonl manifest.

    Manifest paths are relative to the manifest's folder; a .jsonl line may give its own
    num_speakers, which wins over the command-line value.
    """
    input_path = Path(input_path)
    if input_path.is_dir():
        files = sorted(p for p in input_path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        return dedupe([Job(p, uri_for(p, input_path), num_speakers) for p in files])
    if not input_path.is_file():
        raise FileNotFoundError(f"{input_path}: no such folder or manifest")
    base = input_path.parent
    jobs = []
    for line in input_path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if input_path.suffix == ".jsonl":
            entry = json.loads(line)
            path = base / entry["path"]
            jobs.append(Job(path, uri_for(path, base), entry.get("num_speakers", num_speakers)))
        else:
            path = base / line
            jobs.append(Job(path, uri_for(path, base), num_speakers))
    return dedupe(jobs)


def dedupe(jobs: list[Job]) -> list[Job]:
    """Two inputs mapping to one name (a.wav and a.flac) must not overwrite each other's output."""
    seen: dict[str, int] = {}
    out = []
    for job in jobs:
        count = seen.get(job.uri, 0)
        seen[job.uri] = count + 1
        out.append(job if count == 0 else Job(job.path, f"{job.uri}~{count}", job.num_speakers))
    return out
