"""The model serving new streams, and its hot reload.

The pod watches the model file (or a mounted directory, where a ConfigMap/volume update swaps a
symlink): on a change it loads and warms the new model off the event loop, checks it answers
sanely, and only then makes it current. Streams already running keep the model they started with
(their speaker embeddings must stay in one space), so nothing live is dropped. A bad file is
refused and the old model keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inference_pod import engine

log = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, int, int, int], ...]


class ModelError(RuntimeError):
    """A model file that cannot serve: missing, not ONNX, wrong output shape, non-finite output."""


@dataclass(frozen=True)
class LoadedModel:
    model: Any  # voiceflow.embedding.EmbeddingModel
    version: str
    sha256: str
    path: str | None
    loaded_at: float

    @property
    def label(self) -> str:
        return f"{self.version} ({self.sha256[:12]})"


def resolve_model_file(path: str | None) -> Path | None:
    """A directory mounts a model: take `model.onnx`, else its only `*.onnx`."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        preferred = p / "model.onnx"
        if preferred.exists():
            return preferred
        candidates = sorted(c for c in p.glob("*.onnx") if not c.name.startswith("."))
        if len(candidates) != 1:
            raise ModelError(f"{p} holds {len(candidates)} .onnx files; expected model.onnx or exactly one")
        return candidates[0]
    return p


def fingerprint(path: str | None) -> Fingerprint:
    """What changes when the model is replaced: the resolved file (and its JSON sidecar)'s identity."""
    try:
        model_file = resolve_model_file(path)
    except ModelError:
        return (("unresolvable", 0, 0, 0),)
    if model_file is None:
        return ()
    parts = []
    for f in (model_file, model_file.with_suffix(".json")):
        try:
            st = os.stat(f)  # follows symlinks: a ConfigMap's `..data` swap shows here
        except OSError:
            parts.append((str(f), 0, 0, 0))
            continue
        parts.append((str(f), st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(parts)


def warm_check(model: Any) -> None:
    """Run the model once on silence and noise; refuse it unless it gives finite [B, D] output."""
    seconds = float(getattr(model, "metadata", {}).get("window_seconds", 1.6))
    window = int(seconds * 16000)
    rng = np.random.default_rng(0)
    probe = np.stack([np.zeros(window, np.float32), (0.1 * rng.standard_normal(window)).astype(np.float32)])
    out = np.asarray(model.embed(probe))
    if out.ndim != 2 or out.shape[0] != 2 or out.shape[1] < 1:
        raise ModelError(f"model output has shape {out.shape}, expected (2, D)")
    if not np.isfinite(out).all():
        raise ModelError("model output is not finite on the warm-up probe")
    # Run the streaming path once too (VAD session, clustering, code paths), so the first real
    # stream on this model is not the one paying for cold start.
    session = engine.new_stream_session(model, model.embed)
    session.feed(np.concatenate([probe[1], probe[1]]))
    session.finish()


def load_and_warm(path: str | None) -> LoadedModel:
    model_file = resolve_model_file(path)
    try:
        model = engine.load_embedding_model(str(model_file) if model_file else None)
    except ModelError:
        raise
    except Exception as exc:  # onnxruntime/engine errors vary; the operator needs one line
        raise ModelError(f"cannot load model {model_file}: {exc}") from exc
    warm_check(model)
    return LoadedModel(
        model=model,
        version=str(getattr(model, "version", "unknown")),
        sha256=str(getattr(model, "sha256", "")),
        path=str(model_file) if model_file else None,
        loaded_at=time.time(),
    )


class ModelManager:
    def __init__(
        self,
        path: str | None,
        on_change: Callable[[LoadedModel], None] | None = None,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self.on_change = on_change
        self.on_failure = on_failure
        self._current: LoadedModel | None = None
        self._fingerprint: Fingerprint = ()
        self.last_error: str | None = None

    @property
    def current(self) -> LoadedModel:
        if self._current is None:
            raise RuntimeError("model not loaded yet")
        return self._current

    @property
    def ready(self) -> bool:
        return self._current is not None

    async def load_initial(self) -> LoadedModel:
        self._fingerprint = fingerprint(self.path)
        loaded = await asyncio.to_thread(load_and_warm, self.path)
        self._set(loaded)
        return loaded

    async def check_once(self) -> bool:
        """Reload when the file changed; True when a new model became current."""
        fp = fingerprint(self.path)
        if fp == self._fingerprint:
            return False
        self._fingerprint = fp  # a bad file is tried once per change, not every poll
        try:
            loaded = await asyncio.to_thread(load_and_warm, self.path)
        except Exception as exc:
            self.last_error = str(exc)
            log.error("model reload refused, keeping %s: %s", self._current and self._current.label, exc)
            if self.on_failure is not None:
                self.on_failure(str(exc))
            return False
        self._set(loaded)
        log.info("model reloaded: now serving %s for new streams", loaded.label)
        return True

    async def watch(self, poll_seconds: float) -> None:
        while True:
            await asyncio.sleep(poll_seconds)
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the watcher die: it is the only way to recover from a bad push
                log.exception("model watcher error")

    def _set(self, loaded: LoadedModel) -> None:
        self._current = loaded
        self.last_error = None
        if self.on_change is not None:
            self.on_change(loaded)
