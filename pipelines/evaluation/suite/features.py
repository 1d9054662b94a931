"""VAD probabilities and window embeddings cached on disk per recording and model, so comparing
clustering variants on the suite costs clustering, not embedding.

Both caches plug into the engine unchanged: `CachedVAD` is a `vad_factory` product and
`CachedEmbeddingModel` is an `EmbeddingModel` whose batch reads are memoised. Keys are content
digests (the audio, the window plan, the model file's sha256), so a cached result can only be
returned for exactly the input that produced it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Concatenate, ParamSpec

import numpy as np

from voiceflow.embedding import EmbeddingModel, WindowSource
from voiceflow.vad import SileroVAD

P = ParamSpec("P")

VAD_KEY = "silero-bundled-3"  # the VAD is bundled with the engine: 3 = its two halves, the encoder as matrix products


def digest(*arrays: np.ndarray | bytes | str) -> str:
    h = hashlib.sha1()
    for a in arrays:
        if isinstance(a, np.ndarray):
            h.update(str((a.dtype, a.shape)).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        else:
            h.update(a.encode() if isinstance(a, str) else a)
    return h.hexdigest()[:20]


def _cached(path: Path, compute: Callable[[], np.ndarray]) -> np.ndarray:
    if path.is_file():
        return np.asarray(np.load(path))
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        np.save(handle, value)
    os.replace(tmp, path)
    return value


def reader_digest() -> str:
    """The code that turns a model and audio into embeddings: a change to it retires the cache."""
    import voiceflow.embedding
    import voiceflow.staggered

    return digest(*(Path(m.__file__ or "").read_bytes() for m in (voiceflow.embedding, voiceflow.staggered)))[:8]


class CachedVAD(SileroVAD):
    """SileroVAD's probabilities, memoised on disk by the audio's digest (a miss runs a fresh VAD,
    so no stream state leaks between recordings)."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = Path(folder) / "vad" / VAD_KEY

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        return _cached(self.folder / f"{digest(audio)}.npy", lambda: SileroVAD().probabilities(audio))

    def factory(self) -> SileroVAD:
        return self


def _windows_key(windows: WindowSource, *_: object, **__: object) -> str:
    audio, plan = getattr(windows, "audio", None), getattr(windows, "plan", None)
    if audio is None or plan is None:  # a plain array of windows: key by the windows themselves
        return digest(np.asarray(windows[0 : len(windows)]))
    return digest(audio, plan.starts.astype(np.int64), str(plan.frames_per_window))


def _staggered_key(audio: np.ndarray, window_ends: np.ndarray, window: int, *_: object, **__: object) -> str:
    return digest(audio, np.asarray(window_ends, dtype=np.int64), str(window))


def _memoised(
    method: Callable[Concatenate[EmbeddingModel, P], np.ndarray], prefix: str, key: Callable[P, str]
) -> Callable[Concatenate[CachedEmbeddingModel, P], np.ndarray]:
    """`method` with its result kept in the model's cache folder as `<prefix>-<key>.npy`. The key
    reads only the arguments that decide the result (batch size and progress do not)."""

    def memoised(self: CachedEmbeddingModel, *args: P.args, **kwargs: P.kwargs) -> np.ndarray:
        return _cached(
            self.cache_folder / f"{prefix}-{key(*args, **kwargs)}.npy", lambda: method(self, *args, **kwargs)
        )

    return memoised


@dataclass
class CachedEmbeddingModel(EmbeddingModel):
    """An EmbeddingModel whose `embed_batched` and `read_windows` results are memoised on disk.

    `embed` itself is not: the streaming session embeds window by window as audio arrives, and
    those calls are neither repeated across systems nor worth a file each."""

    cache_folder: Path = Path()

    @classmethod
    def wrap(cls, model: EmbeddingModel, folder: Path) -> CachedEmbeddingModel:
        values = {f.name: getattr(model, f.name) for f in fields(EmbeddingModel)}
        return cls(**values, cache_folder=Path(folder) / "embeddings" / f"{model.sha256[:16]}-{reader_digest()}")

    embed_batched = _memoised(EmbeddingModel.embed_batched, "w", _windows_key)
    read_windows = _memoised(EmbeddingModel.read_windows, "s", _staggered_key)
