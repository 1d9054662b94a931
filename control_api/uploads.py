"""Checking and storing uploaded audio: format by magic bytes then by decoding, never by file name.

Every file of a request is checked and written under a staging folder first; only when all of them
pass are they moved into the job's folder. A rejected request removes its staging folder, so nothing
half-written is left behind.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from control_api.engine import AudioValidator
from voiceflow.audio import AudioTooLarge, sniff_audio_format

SNIFF_BYTES = 12  # enough for every container the engine's sniffer knows (RIFF/RF64....WAVE)


class UploadRejected(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass(frozen=True)
class StagedFile:
    filename: str  # the client's name, cleaned, for display only
    path: Path
    duration_s: float


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def clean_filename(name: str | None, fallback: str) -> str:
    # Only the last path component, restricted characters: the name is shown, never trusted as a path.
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).strip("._")[:200]
    return cleaned or fallback


def stage_upload(
    stream: BinaryIO,
    filename: str | None,
    staging_dir: Path,
    index: int,
    *,
    max_bytes: int,
    max_seconds: float,
    validate: AudioValidator,
) -> StagedFile:
    """Copy one upload into `staging_dir` and check it; raises UploadRejected (413/415/422)."""
    name = clean_filename(filename, f"file{index}")
    head = stream.read(SNIFF_BYTES)
    fmt = sniff_audio_format(head)
    if fmt is None:
        raise UploadRejected(415, f"{name}: not a WAV, FLAC or Ogg audio file (checked by content)")
    target = staging_dir / f"{index:04d}.{fmt}"
    size = len(head)
    with target.open("wb") as out:
        out.write(head)
        while chunk := stream.read(1 << 20):
            size += len(chunk)
            if size > max_bytes:
                raise UploadRejected(413, f"{name}: larger than the {max_bytes} byte limit")
            out.write(chunk)
    try:
        duration = validate(target.read_bytes())
    except AudioTooLarge as exc:
        raise UploadRejected(413, f"{name}: {_without_prefix(exc)}") from exc
    except ValueError as exc:  # AudioError is a ValueError
        raise UploadRejected(422, f"{name}: cannot be decoded as audio: {_without_prefix(exc)}") from exc
    if duration <= 0:
        raise UploadRejected(422, f"{name}: contains no audio")
    if duration > max_seconds:
        raise UploadRejected(413, f"{name}: {duration:.0f} s of audio exceeds the {max_seconds:.0f} s limit")
    return StagedFile(name, target, duration)


def _without_prefix(exc: Exception) -> str:
    # The decoder names its input ("upload: ..."); the message already starts with the file's name.
    return str(exc).removeprefix("upload: ")


# A staging folder nothing was written to for this long belongs to no live request: its process was killed
# mid-upload (a live upload writes a block at least every few seconds). Not "everything at start": another
# API process sharing the storage may be receiving an upload right now.
STAGING_STALE_S = 120.0


def sweep_staging(storage_dir: Path, now: float | None = None) -> list[Path]:
    """Remove staging folders left behind by a killed process; returns what was removed."""
    root = storage_dir / "staging"
    now = time.time() if now is None else now
    removed = []
    for folder in root.iterdir() if root.is_dir() else ():
        paths = [folder, *folder.rglob("*")] if folder.is_dir() else [folder]
        try:
            newest = max(p.lstat().st_mtime for p in paths)
        except FileNotFoundError:  # finished (and removed) by its request while we looked
            continue
        if now - newest > STAGING_STALE_S:
            if folder.is_dir():
                discard(folder)
            else:
                folder.unlink(missing_ok=True)
            removed.append(folder)
    return removed


def new_staging_dir(storage_dir: Path) -> Path:
    path = storage_dir / "staging" / uuid.uuid4().hex
    path.mkdir(parents=True)
    return path


def commit_staged(staged: list[StagedFile], job_dir: Path) -> list[Path]:
    """Move staged files into the job folder (same filesystem: renames, so they appear whole)."""
    job_dir.mkdir(parents=True, exist_ok=True)
    final = []
    for item in staged:
        target = job_dir / item.path.name
        item.path.replace(target)
        final.append(target)
    return final


def discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def resolve_reference(reference: str, root: str) -> Path:
    """A server-side file named relative to the configured reference root; refuses anything outside it."""
    if not root:
        raise UploadRejected(422, "references are not enabled on this server (VOICEFLOW_REFERENCE_ROOT)")
    if "\x00" in reference:  # a path cannot hold it (ValueError from the OS layer, a 500 before)
        raise UploadRejected(422, f"{reference!r}: NUL bytes are not allowed in a reference")
    base = Path(root).resolve()
    ref = reference.removeprefix("file://")
    candidate = (base / ref).resolve()
    if not candidate.is_relative_to(base):
        raise UploadRejected(422, f"{reference}: outside the reference root")
    if not candidate.is_file():
        raise UploadRejected(422, f"{reference}: no such file")
    return candidate
