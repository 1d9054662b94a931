"""The rendered suite on disk, keyed by its parameters: built once, read back by every run.

Layout: <root>/<name>-<digest>/manifest.json, and per recording <uri>.npy (float32 audio, exact)
and <uri>.json (reference segments). The digest covers the SuiteConfig, GENERATOR_VERSION and the
names of the source files, so a changed generator or data set never reads a stale suite. Files
are written to a temporary name and renamed, so an interrupted build leaves no half file behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipelines.evaluation.suite.manifest import RecordingSpec, SuiteConfig, build_manifest, manifest_digest
from pipelines.evaluation.suite.render import SourceBank, SuiteRecording, render
from voiceflow.segments import Segment

# Bump whenever rendering or the manifest changes what a given config produces.
GENERATOR_VERSION = "suite-3"  # 3: simulated references bridge pauses under 1 s, as AMI's do
CACHE_ENV = "VOICEFLOW_SUITE_CACHE"


def cache_root(explicit: str | Path | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "voiceflow" / "suite"


def suite_dir(config: SuiteConfig, bank: SourceBank, root: str | Path | None = None) -> Path:
    return cache_root(root) / f"{config.name}-{manifest_digest(config, GENERATOR_VERSION, list(bank.names))}"


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _save(folder: Path, recording: SuiteRecording) -> None:
    uri = recording.spec.uri

    # np.save appends .npy to a name without it: write through an open file instead
    def save_audio(p: Path) -> None:
        with open(p, "wb") as handle:
            np.save(handle, recording.audio.astype(np.float32))

    _atomic_write(folder / f"{uri}.npy", save_audio)
    ref = [[s.start, s.end, s.speaker] for s in recording.reference]
    _atomic_write(folder / f"{uri}.json", lambda p: p.write_text(json.dumps({"reference": ref})))


def _load(folder: Path, spec: RecordingSpec) -> SuiteRecording | None:
    audio_path, ref_path = folder / f"{spec.uri}.npy", folder / f"{spec.uri}.json"
    if not (audio_path.is_file() and ref_path.is_file()):
        return None
    audio = np.load(audio_path)
    reference = [Segment(float(a), float(b), str(s)) for a, b, s in json.loads(ref_path.read_text())["reference"]]
    return SuiteRecording(spec, audio, reference)


def load_suite(
    config: SuiteConfig,
    data_dir: Path,
    root: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[SuiteRecording], Path]:
    """Every recording of the suite, from the cache when there, rendered (and cached) when not."""
    bank = SourceBank.load(data_dir)
    folder = suite_dir(config, bank, root)
    folder.mkdir(parents=True, exist_ok=True)
    specs = build_manifest(config)
    manifest = {
        "version": GENERATOR_VERSION,
        "config": config.to_dict(),
        "sources": list(bank.names),
        "recordings": [s.to_dict() for s in specs],
    }
    _atomic_write(folder / "manifest.json", lambda p: p.write_text(json.dumps(manifest, indent=1) + "\n"))
    recordings = []
    for spec in specs:
        recording = _load(folder, spec)
        if recording is None:
            if progress:
                progress(
                    f"rendering {spec.uri} ({spec.duration_seconds:.0f} s, {spec.channel}, {spec.num_speakers} spk)"
                )
            recording = render(spec, bank)
            _save(folder, recording)
        recordings.append(recording)
    return recordings, folder
