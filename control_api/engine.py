"""The only module that calls the core engine; everything else takes these functions as parameters.

Imports of `voiceflow.*` engine modules are lazy so the API starts (and its queue tests run) on an
install where the engine's heavier runtime is not importable yet.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FileResult:
    segments: list[dict[str, Any]]
    rttm: str
    # The model bundle that produced it: {"version": ..., "bundle_digest": ...} (None: not recorded).
    model: dict[str, str] | None = None


# (audio path, file id used in the RTTM) -> result; raises on a file that cannot be diarized.
DiarizeFn = Callable[[Path, str], FileResult]
# (file bytes) -> duration in seconds; raises ValueError (AudioError) when the bytes are not audio.
AudioValidator = Callable[[bytes], float]

ENGINE_SAMPLE_RATE = 16000

_diarizers: dict[str, Any] = {}
_diarizer_lock = threading.Lock()
_active_model_dir: Path | None = None


def use_active_model_dir(directory: Path | None) -> None:
    """Batch jobs diarize with the model the pods serve: the bundle published in `directory`
    (`PUT /api/models/{id}/activate`), else the bundled default."""
    global _active_model_dir
    _active_model_dir = directory


def _active_model_path() -> Path | None:
    from voiceflow.bundle import CURRENT_LINK, model_file_in

    if _active_model_dir is None or not (_active_model_dir / CURRENT_LINK).is_dir():
        return None
    return model_file_in(_active_model_dir)


def _shared_diarizer() -> Any:
    # One Diarizer per served bundle and process: loading the ONNX models is the expensive part and
    # they are reusable; a newly activated bundle (another `current` target) gets its own.
    model_path = _active_model_path()
    key = str(model_path.resolve()) if model_path is not None else ""
    with _diarizer_lock:
        if key not in _diarizers:
            from voiceflow.config import EngineConfig
            from voiceflow.embedding import EmbeddingModel
            from voiceflow.selection import make_offline_diarizer

            _diarizers.clear()
            _diarizers[key] = make_offline_diarizer(EngineConfig(), EmbeddingModel.load(model_path))
        return _diarizers[key]


def model_identity(diarizer: Any) -> dict[str, str]:
    model = diarizer.embedding_model
    return {"version": str(model.version), "bundle_digest": str(model.bundle_digest)}


def segment_to_dict(segment: Any) -> dict[str, Any]:
    return {"start": float(segment.start), "end": float(segment.end), "speaker": str(segment.speaker)}


def engine_diarize(path: Path, file_id: str) -> FileResult:
    from voiceflow.rttm import segments_to_rttm

    diarizer = _shared_diarizer()
    segments = diarizer.diarize_file(path)
    return FileResult(
        [segment_to_dict(s) for s in segments], segments_to_rttm(segments, file_id), model_identity(diarizer)
    )


def engine_validate_audio(data: bytes) -> float:
    from voiceflow.audio import probe_audio_bytes

    # Decoded block by block and not kept: a long upload costs CPU, never its decoded size in memory.
    return probe_audio_bytes(data)


def load_callable(spec: str) -> Callable[..., Any]:
    """`package.module:function` -> the function (how settings name the diarization function)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"expected 'module:function', got {spec!r}")
    fn = getattr(importlib.import_module(module_name), attr)
    if not callable(fn):
        raise TypeError(f"{spec} is not callable")
    return fn
