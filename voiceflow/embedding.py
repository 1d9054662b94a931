"""The speaker-embedding runtime: any ONNX model that maps raw 16 kHz waveform to embeddings.

Feature extraction lives inside the graph, so this module needs only onnxruntime and numpy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort

from voiceflow import staggered
from voiceflow.bundle import BundleError, ModelBundle, file_sha256, model_file_in, part_path, verify_bundle
from voiceflow.model_store import configured_store, promoted_model

MODELS_DIR = Path(__file__).parent / "models"  # installed package data: read, never written
DEFAULT_MODEL = MODELS_DIR / "ge2e.onnx"
# The shipped choice of default, read-only: {"model": "<file in models/>", "sha256": "...",
# "version": "...", "fallback": "ge2e.onnx"}. Promotion writes to the model store, never here.
DEFAULT_POINTER = MODELS_DIR / "default.json"


class ModelError(ValueError):
    """A model file that cannot serve (missing, not ONNX, wrong inputs or outputs)."""


def packaged_default_model(pointer: Path = DEFAULT_POINTER) -> Path:
    """The package's shipped default: the model its pointer names when intact, else the bundled GE2E."""
    if not pointer.is_file():
        return DEFAULT_MODEL
    try:
        data = json.loads(pointer.read_text())
        candidate = pointer.parent / Path(str(data["model"])).name
        if candidate.is_file() and file_sha256(candidate) == data.get("sha256"):
            return candidate
    except (ValueError, KeyError, TypeError, OSError):
        pass
    return DEFAULT_MODEL


def default_model_path(store: Path | None = None) -> Path:
    """The model the engine serves when none is named: the model store's promoted bundle when it
    is present and intact (voiceflow.model_store; `store` defaults to the configured one, none
    when VOICEFLOW_IGNORE_MODEL_STORE is set), else the packaged default."""
    promoted = promoted_model(store if store is not None else configured_store())
    return promoted if promoted is not None else packaged_default_model()


def background_path(model_path: Path) -> Path:
    """Where a model's background mean embedding lives (pipelines/export/background.py writes it)."""
    return part_path(model_path, "background")


def session_options(threads: int = 1) -> ort.SessionOptions:
    options = ort.SessionOptions()
    # One intra-op thread per session: throughput comes from serving many windows/streams in
    # parallel, and oversubscribing 2 cores makes tail latency worse.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def open_session(model_path: Path, threads: int, what: str) -> ort.InferenceSession:
    """An onnxruntime CPU session on `model_path`, or a one-line ModelError saying why not."""
    if not model_path.is_file():
        raise ModelError(f"{model_path}: {what} file not found")
    try:
        return ort.InferenceSession(
            str(model_path), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises several unrelated types for a bad file
        raise ModelError(f"{model_path}: not a loadable ONNX model ({str(exc).splitlines()[0][:160]})") from exc


class WindowSource(Protocol):
    """[N, T] windows, or an object that produces a slice of them on demand."""

    def __len__(self) -> int: ...

    def __getitem__(self, part: slice, /) -> np.ndarray: ...


@dataclass
class EmbeddingModel:
    path: Path
    session: ort.InferenceSession
    sha256: str
    metadata: dict[str, object] = field(default_factory=dict)
    background_mean: np.ndarray | None = None
    # The model's raw-centroid cosines minus GE2E's on the same speakers (calibrated at export on
    # meetings it never heard); the offline clustering's merge threshold moves by it.
    merge_threshold_shift: float = 0.0
    bundle: ModelBundle | None = None

    @classmethod
    def load(cls, path: str | Path | None = None, threads: int = 1) -> EmbeddingModel:
        try:
            model_path = model_file_in(Path(path)) if path is not None else default_model_path()
            # Every part the model is served with is checked before any is used: a bundle missing
            # its background mean must not load and silently stream everyone as one speaker.
            bundle = verify_bundle(model_path)
        except BundleError as exc:
            raise ModelError(str(exc)) from exc
        session = open_session(model_path, threads, "model")
        inputs = session.get_inputs()
        outputs = session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 2 or len(outputs) < 1:
            raise ModelError(f"{model_path}: expected one waveform input [batch, samples] and an embedding output")
        metadata = _load_metadata(bundle.part("metadata"))
        model = cls(model_path, session, bundle.parts["model"].sha256, metadata, bundle=bundle)
        _check_staggered_metadata(model_path, metadata, per_frame=len(outputs[0].shape) == 3)
        model.merge_threshold_shift = _metadata_shift(model_path, metadata)
        model.embed(np.zeros((1, 16000), dtype=np.float32))  # warm up and prove it runs
        background = bundle.part("background")
        model.background_mean = _load_background(background, model.dimension) if background else None
        return model

    @property
    def version(self) -> str:
        return str(self.metadata.get("version") or f"{self.path.stem}-{self.sha256[:12]}")

    @property
    def bundle_digest(self) -> str:
        """The identity of everything this model serves with (ONNX, metadata, background, ...)."""
        return self.bundle.digest if self.bundle is not None else self.sha256

    @property
    def bundle_parts(self) -> list[str]:
        return self.bundle.roles if self.bundle is not None else ["model"]

    @property
    def input_name(self) -> str:
        return str(self.session.get_inputs()[0].name)

    def _metadata_int(self, key: str, default: int) -> int:
        value = self.metadata.get(key, default)
        return int(value) if isinstance(value, int | float | str) else default

    @property
    def frame_hop(self) -> int:
        """Samples between a per-frame model's output frames (GE2E's 10 ms)."""
        return self._metadata_int("frame_hop_samples", 160)

    @property
    def streams(self) -> int:
        """K for a model exported to be read in staggered streams (voiceflow.staggered); 0 otherwise."""
        return self._metadata_int("streams", 0)

    @property
    def segment_hop(self) -> int:
        """Samples between a staggered model's segments when it names them; 0: the hop of its streams."""
        return self._metadata_int("segment_hop_samples", 0)

    @property
    def rows_independent(self) -> bool:
        """Whether a row's embedding is the same whatever else shares its batch. Not so for an INT8
        model: onnxruntime's dynamic quantization scales activations by the whole batch's range, so
        a server must not batch different streams' windows into one call of it."""
        return str(self.metadata.get("quantization", "none")) == "none"

    def _run(self, audio: np.ndarray, what: str) -> np.ndarray:
        """The model's raw output for a batch of audio rows [B, samples>=400]."""
        batch = np.ascontiguousarray(audio, dtype=np.float32)
        if batch.ndim != 2 or batch.shape[1] < 400:
            raise ValueError(f"{what} must be [batch, samples>=400], got {batch.shape}")
        return np.asarray(self.session.run(None, {self.input_name: batch})[0], dtype=np.float32)

    def frames(self, segments: np.ndarray, normalise: bool = True) -> np.ndarray:
        """segments [B, T] -> per-frame embeddings [B, frames, D] (models with a per-frame output)."""
        raw = self._run(segments, "segments")
        if raw.ndim != 3:
            raise ModelError(f"{self.path}: has no per-frame output (export it with --streams)")
        return l2_normalize(raw) if normalise else raw

    def read_windows(
        self,
        audio: np.ndarray,
        window_ends: np.ndarray,
        window: int,
        batch_size: int = 32,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """L2-normalised embeddings of the `window`-sample windows ending at `window_ends`, read off
        staggered segments the way the model was exported to be read (voiceflow.staggered).

        Only the frames a window is read off are normalised: a segment has ~220 frames and serves 3."""
        raw = staggered.read_staggered(
            lambda segments: self.frames(segments, normalise=False),
            audio,
            window_ends,
            window,
            self.streams,
            self.frame_hop,
            batch_size,
            progress,
            self.segment_hop,
        )
        return l2_normalize(raw)

    def embed(self, windows: np.ndarray) -> np.ndarray:
        """windows [B, T] float32 16 kHz -> L2-normalised embeddings [B, D].

        A per-frame model's embedding of a window is its last frame: the state after reading it all."""
        raw = self._run(windows, "windows")
        return l2_normalize(raw[:, -1] if raw.ndim == 3 else raw)

    def embed_batched(
        self,
        windows: WindowSource,
        batch_size: int = 32,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Embed any number of windows in batches; `progress(done, total)` after each batch.

        `windows` is an array or anything that cuts a batch of windows on slicing (the offline
        pipeline's lazy windows), so a long file never holds all of its windows at once."""
        if len(windows) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = []
        for i in range(0, len(windows), batch_size):
            parts.append(self.embed(windows[i : i + batch_size]))
            if progress is not None:
                progress(min(i + batch_size, len(windows)), len(windows))
        return np.concatenate(parts, axis=0)

    @property
    def dimension(self) -> int:
        shape = self.session.get_outputs()[0].shape
        return int(shape[-1]) if isinstance(shape[-1], int) else int(self.metadata.get("embedding_dim", 256))  # type: ignore[call-overload]


MAX_MERGE_THRESHOLD_SHIFT = 0.2
MAX_SEGMENT_HOP = 160_000  # samples: the longest window the pipeline accepts (10 s)


def _check_staggered_metadata(model_path: Path, metadata: dict[str, object], per_frame: bool) -> None:
    """Refuse a staggered reading the engine cannot follow, before any audio is read with it."""
    streams = metadata.get("streams", 0)
    hop = metadata.get("segment_hop_samples", 0)
    for key, value in (("streams", streams), ("segment_hop_samples", hop)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ModelError(f"{model_path}: {key} must be a whole number, got {value!r}")
    assert isinstance(streams, int) and isinstance(hop, int)
    if streams and (streams < 2 or not per_frame):
        raise ModelError(f"{model_path}: 'streams' needs a per-frame output [batch, frames, dim] and K >= 2")
    if hop and not streams:
        raise ModelError(f"{model_path}: segment_hop_samples needs a staggered model ('streams' >= 2)")
    if not 0 <= hop <= MAX_SEGMENT_HOP:
        raise ModelError(f"{model_path}: segment_hop_samples must be 0..{MAX_SEGMENT_HOP}, got {hop}")


def _metadata_shift(model_path: Path, metadata: dict[str, object]) -> float:
    value = metadata.get("merge_threshold_shift", 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ModelError(f"{model_path}: merge_threshold_shift must be a finite number, got {value!r}")
    if abs(value) > MAX_MERGE_THRESHOLD_SHIFT:
        raise ModelError(f"{model_path}: merge_threshold_shift {value} is outside +-{MAX_MERGE_THRESHOLD_SHIFT}")
    return float(value)


def _load_metadata(path: Path | None) -> dict[str, object]:
    if path is None:
        return {}
    try:
        metadata = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise ModelError(f"{path}: unreadable model metadata ({exc})") from exc
    if not isinstance(metadata, dict):
        raise ModelError(f"{path}: model metadata must be a JSON object")
    return metadata


def _load_background(path: Path, dimension: int) -> np.ndarray | None:
    try:
        mean = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ModelError(f"{path}: unreadable background mean ({exc})") from exc
    if mean.shape != (dimension,) or not np.all(np.isfinite(mean)):
        raise ModelError(f"{path}: background mean must be {dimension} finite floats, got shape {mean.shape}")
    return mean.astype(np.float32)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
