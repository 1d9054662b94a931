"""The model serving new streams, and its hot reload.

The pod watches the model file (or a mounted directory, where a ConfigMap/volume update swaps a
symlink): on a change it loads and warms the new model off the event loop, checks it answers
sanely, and only then makes it current. Streams already running keep the model they started with
(their speaker embeddings must stay in one space), so nothing live is dropped. A bad file is
refused and the old model keeps serving. With the segmentation pipeline the segmentation model is
loaded, checked and watched beside the embedding model: the pair is one unit, swapped together.

`LoadedModel` is that unit and the pod's `engine.ServingModel`: `LoadedModel.load` (load, check,
warm), then `predict` for /infer or `open_stream` for a stream.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference_pod import engine
from inference_pod.engine import EmbeddingModel, EngineConfig, Segment, SegmentationModel, StreamSession
from voiceflow.bundle import PUBLISHED_MODEL, BundleError, index_path, model_file_in

log = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, int, int, int], ...]


class ModelError(RuntimeError):
    """A model file that cannot serve: missing, not ONNX, wrong output shape, non-finite output."""


@dataclass(frozen=True)
class LoadedModel:
    """The model the pod serves (an `engine.ServingModel`): the embedding model and, for the
    pipelines that use one, the segmentation model, loaded, checked and warmed as one unit by `load`."""

    model: EmbeddingModel
    version: str
    sha256: str
    path: str | None
    loaded_at: float
    bundle_digest: str = ""
    bundle_parts: tuple[str, ...] = ()
    config: EngineConfig = field(default_factory=EngineConfig)  # the engine's settings, its pipeline included
    segmentation: SegmentationModel | None = None  # the segmentation network, or embedding-overlap's detector
    segmentation_version: str | None = None
    segmentation_sha256: str | None = None
    segmentation_path: str | None = None

    @property
    def label(self) -> str:
        return f"{self.version} ({self.sha256[:12]})"

    @property
    def pipeline(self) -> str:
        return self.config.pipeline

    @classmethod
    def load(
        cls, path: str | None, config: EngineConfig | None = None, segmentation_path: str | None = None
    ) -> LoadedModel:
        """Load the models `config`'s pipeline serves (None: the engine's defaults) from `path` (a file
        or a mounted bundle folder; None: the bundled default) and prove they answer sanely;
        ModelError (one line) when they do not."""
        config = config or engine.engine_config()
        pipeline = config.pipeline
        model_file = resolve_model_file(path)
        try:
            model = engine.load_embedding_model(str(model_file) if model_file else None)
        except ModelError:
            raise
        except Exception as exc:  # onnxruntime/engine errors vary; the operator needs one line
            raise ModelError(f"cannot load model {model_file}: {exc}") from exc
        segmentation = None
        seg_file: Path | None = None
        if engine.uses_segmentation_model(pipeline):
            seg_file = resolve_model_file(segmentation_path, SEGMENTATION_FILE)
            try:
                segmentation = engine.load_segmentation_model(config, str(seg_file) if seg_file else None)
            except ModelError:
                raise
            except Exception as exc:
                where = seg_file or "(bundled default)"
                raise ModelError(f"cannot load segmentation model {where}: {exc}") from exc
            if segmentation is not None:
                segmentation_warm_check(segmentation)
        warm_check(model, config, segmentation)
        return cls(
            model=model,
            version=model.version,
            sha256=model.sha256,
            path=str(model_file) if model_file else None,
            loaded_at=time.time(),
            bundle_digest=model.bundle_digest,
            bundle_parts=tuple(model.bundle_parts),
            config=config,
            segmentation=segmentation,
            segmentation_version=segmentation.version if segmentation is not None else None,
            segmentation_sha256=segmentation.sha256 if segmentation is not None else None,
            segmentation_path=str(segmentation.path) if segmentation is not None else None,
        )

    def predict(self, audio: np.ndarray, num_speakers: int | None = None) -> list[Segment]:
        return engine.diarize(self.model, audio, num_speakers, self.config, self.segmentation)

    def open_stream(self, routes: engine.StreamRoutes | None = None) -> StreamSession:
        return engine.new_stream_session(self.model, self.config, self.segmentation, routes)


def resolve_model_file(path: str | None, preferred_name: str = PUBLISHED_MODEL) -> Path | None:
    """A directory mounts a model bundle: its `current` bundle, else `preferred_name`, else its only `*.onnx`."""
    if path is None:
        return None
    try:
        return model_file_in(Path(path), preferred_name)
    except BundleError as exc:
        raise ModelError(str(exc)) from exc


SEGMENTATION_FILE = "segmentation.onnx"


def fingerprint(path: str | None, preferred_name: str = PUBLISHED_MODEL) -> Fingerprint:
    """What changes when the model is replaced: the resolved file's, its metadata's and its bundle
    index's identity (a published bundle swaps `current`, so every resolved path changes at once)."""
    try:
        model_file = resolve_model_file(path, preferred_name)
    except ModelError:
        return (("unresolvable", 0, 0, 0),)
    if model_file is None:
        return ()
    parts = []
    for f in (model_file, model_file.with_suffix(".json"), index_path(model_file)):
        try:
            st = os.stat(f)  # follows symlinks: a ConfigMap's `..data` swap shows here
        except OSError:
            parts.append((str(f), 0, 0, 0))
            continue
        parts.append((str(f), st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(parts)


def models_fingerprint(path: str | None, pipeline: str, segmentation_path: str | None) -> Fingerprint:
    """The served models' identity: the embedding model's, plus the segmentation model's when used."""
    fp = fingerprint(path)
    if engine.uses_segmentation_model(pipeline):
        fp = (*fp, ("segmentation", 0, 0, 0), *fingerprint(segmentation_path, SEGMENTATION_FILE))
    return fp


def warm_check(
    model: EmbeddingModel, config: EngineConfig | None = None, segmentation: SegmentationModel | None = None
) -> None:
    """Run the model once on silence and noise; refuse it unless it gives finite [B, D] output."""
    seconds = float(str(model.metadata.get("window_seconds", 1.6)))  # JSON metadata: a number (or its text)
    window = int(seconds * engine.ENGINE_SAMPLE_RATE)
    rng = np.random.default_rng(0)
    probe = np.stack([np.zeros(window, np.float32), (0.1 * rng.standard_normal(window)).astype(np.float32)])
    out = np.asarray(model.embed(probe))
    if out.ndim != 2 or out.shape[0] != 2 or out.shape[1] < 1:
        raise ModelError(f"model output has shape {out.shape}, expected (2, D)")
    if not np.isfinite(out).all():
        raise ModelError("model output is not finite on the warm-up probe")
    # Run the streaming path once too (VAD session, clustering, code paths), so the first real
    # stream on this model is not the one paying for cold start.
    # The segmentation pipeline's session needs a chunk's worth of audio before it steps.
    repeats = 2 if segmentation is None else max(2, -(-segmentation.chunk_samples // window) + 1)
    session = engine.new_stream_session(model, config, segmentation)
    session.feed(np.concatenate([probe[1]] * repeats))
    session.finish()


def segmentation_warm_check(segmentation: SegmentationModel) -> None:
    """Refuse a segmentation model unless it gives finite per-frame activity on a probe chunk."""
    samples = segmentation.chunk_samples
    rng = np.random.default_rng(0)
    probe = (0.1 * rng.standard_normal((1, samples))).astype(np.float32)
    scores = np.asarray(segmentation.log_probs(probe))
    if scores.ndim != 3 or scores.shape[0] != 1 or scores.shape[1] < 1:
        raise ModelError(f"segmentation model output has shape {scores.shape}, expected (1, frames, classes)")
    if not np.isfinite(scores).all():
        raise ModelError("segmentation model output is not finite on the warm-up probe")


class ModelManager:
    def __init__(
        self,
        path: str | None,
        on_change: Callable[[LoadedModel], None] | None = None,
        on_failure: Callable[[str], None] | None = None,
        config: EngineConfig | None = None,
        segmentation_path: str | None = None,
    ) -> None:
        self.path = path
        self.config = config or engine.engine_config()
        self.segmentation_path = segmentation_path
        self.on_change = on_change
        self.on_failure = on_failure
        self._current: LoadedModel | None = None
        self._fingerprint: Fingerprint = ()
        self.last_error: str | None = None

    @property
    def pipeline(self) -> str:
        return self.config.pipeline

    @property
    def current(self) -> LoadedModel:
        if self._current is None:
            raise RuntimeError("model not loaded yet")
        return self._current

    @property
    def ready(self) -> bool:
        return self._current is not None

    async def load_initial(self) -> LoadedModel:
        self._fingerprint = self._current_fingerprint()
        loaded = await asyncio.to_thread(self._load)
        self._set(loaded)
        return loaded

    async def check_once(self) -> bool:
        """Reload when the file changed; True when a new model became current."""
        fp = self._current_fingerprint()
        if fp == self._fingerprint:
            return False
        self._fingerprint = fp  # a bad file is tried once per change, not every poll
        try:
            loaded = await asyncio.to_thread(self._load)
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

    def _current_fingerprint(self) -> Fingerprint:
        return models_fingerprint(self.path, self.pipeline, self.segmentation_path)

    def _load(self) -> LoadedModel:
        return LoadedModel.load(self.path, self.config, self.segmentation_path)

    def _set(self, loaded: LoadedModel) -> None:
        self._current = loaded
        self.last_error = None
        if self.on_change is not None:
            self.on_change(loaded)
