"""The segmentation runtime: an ONNX model that maps a waveform chunk to per-frame local speaker activity.

The graph (pipelines/segmentation/model.py, exported by `voiceflow export`) takes raw 16 kHz
audio [batch, samples] and returns powerset log-probabilities [batch, frames, classes] on 20 ms
frames; the mel front end is inside it, like every VoiceFlow model. This module decodes the
powerset into the two views the pipelines need: hard 0/1 activity per local speaker (argmax
class: overlap is a decision of the network, not a threshold of ours) and soft marginals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from voiceflow import SAMPLE_RATE
from voiceflow.embedding import MODELS_DIR, ModelError, file_sha256, open_session
from voiceflow.powerset import MAX_SIMULTANEOUS, MAX_SPEAKERS, num_classes, powerset_mapping

DEFAULT_SEGMENTATION_MODEL = MODELS_DIR / "segmentation.onnx"
DEFAULT_OVERLAP_MODEL = MODELS_DIR / "overlap.onnx"  # the trained 0/1/2+ detector, when one is bundled


def default_overlap_model_path() -> Path:
    """The bundled overlap detector, else the segmentation network (whose speaker count serves)."""
    return DEFAULT_OVERLAP_MODEL if DEFAULT_OVERLAP_MODEL.is_file() else DEFAULT_SEGMENTATION_MODEL


COUNT_CLASSES = 3  # an overlap detector's classes: 0, 1, 2+ speakers
FRAME_SAMPLES = 320  # 20 ms output frames (two 10 ms mel hops, see pipelines/segmentation/model.py)
MIN_CHUNK_SAMPLES = 4 * FRAME_SAMPLES


@dataclass(frozen=True)
class ChunkActivity:
    """What the network says about a batch of chunks."""

    hard: np.ndarray  # [B, frames, speakers] uint8: the argmax powerset class, decoded
    soft: np.ndarray  # [B, frames, speakers] float32: P(speaker active), summed over classes
    # [B, frames] float32: P(anyone talks) and P(two or more talk), summed over classes; None where
    # the source has no probabilities (the oracle), then read off `hard`
    speech: np.ndarray | None = None
    overlap: np.ndarray | None = None

    def speech_probability(self) -> np.ndarray:
        return self.speech if self.speech is not None else np.asarray(self.hard.any(axis=-1), dtype=np.float32)

    def overlap_probability(self) -> np.ndarray:
        return self.overlap if self.overlap is not None else (self.hard.sum(axis=-1) >= 2).astype(np.float32)


@dataclass
class SegmentationModel:
    path: Path
    session: ort.InferenceSession
    sha256: str
    metadata: dict[str, object] = field(default_factory=dict)
    max_speakers: int = MAX_SPEAKERS
    max_simultaneous: int = MAX_SIMULTANEOUS

    @classmethod
    def load(cls, path: str | Path | None = None, threads: int = 1) -> SegmentationModel:
        model_path = Path(path) if path is not None else DEFAULT_SEGMENTATION_MODEL
        session = open_session(model_path, threads, "segmentation model")
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 2 or len(outputs) != 1 or len(outputs[0].shape) != 3:
            raise ModelError(
                f"{model_path}: not a segmentation model (expected waveform [batch, samples] -> "
                "log-probs [batch, frames, classes])"
            )
        meta_path = model_path.with_suffix(".json")
        metadata = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        if metadata.get("kind", "segmentation") != "segmentation":
            raise ModelError(f"{model_path}: its metadata says kind {metadata.get('kind')!r}, not segmentation")
        speakers = int(metadata.get("max_speakers", MAX_SPEAKERS))
        simultaneous = int(metadata.get("max_simultaneous", MAX_SIMULTANEOUS))
        model = cls(model_path, session, file_sha256(model_path), metadata, speakers, simultaneous)
        probe = model.log_probs(np.zeros((1, SAMPLE_RATE), dtype=np.float32))  # warm up and prove it runs
        if model.task not in ("powerset", "count"):
            raise ModelError(f"{model_path}: unknown task {model.task!r} in its metadata")
        if model.task == "count" and probe.shape[-1] != COUNT_CLASSES:
            raise ModelError(f"{model_path}: an overlap detector has {COUNT_CLASSES} classes, not {probe.shape[-1]}")
        if model.task == "powerset" and probe.shape[-1] != num_classes(speakers, simultaneous):
            raise ModelError(
                f"{model_path}: {probe.shape[-1]} output classes is not the powerset of "
                f"{speakers} speakers, {simultaneous} at once"
            )
        return model

    @property
    def task(self) -> str:
        """ "powerset": which local speakers talk; "count": an overlap detector (0 / 1 / 2+ speakers)."""
        return str(self.metadata.get("task", "powerset"))

    @property
    def version(self) -> str:
        return str(self.metadata.get("version") or f"{self.path.stem}-{self.sha256[:12]}")

    @property
    def chunk_samples(self) -> int:
        """The chunk length the network was trained on (5 s unless its metadata says otherwise)."""
        return round(float(self.metadata.get("chunk_seconds", 5.0)) * SAMPLE_RATE)  # type: ignore[arg-type]

    @property
    def frame_samples(self) -> int:
        return int(self.metadata.get("frame_samples", FRAME_SAMPLES))  # type: ignore[call-overload]

    def log_probs(self, chunks: np.ndarray) -> np.ndarray:
        """chunks [B, T] float32 16 kHz -> powerset log-probabilities [B, T // frame_samples, classes]."""
        batch = np.ascontiguousarray(chunks, dtype=np.float32)
        if batch.ndim != 2 or batch.shape[1] < MIN_CHUNK_SAMPLES:
            raise ValueError(f"chunks must be [batch, samples>={MIN_CHUNK_SAMPLES}], got {batch.shape}")
        out = np.asarray(self.session.run(None, {self.session.get_inputs()[0].name: batch})[0], dtype=np.float32)
        return out[:, : batch.shape[1] // self.frame_samples]

    def count(self, chunks: np.ndarray) -> np.ndarray:
        """[B, frames] int: how many speakers talk in each frame (2 = two or more), either task."""
        return self.count_and_overlap(chunks)[0]

    def count_and_overlap(self, chunks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """([B, frames] int speaker count of the argmax class, [B, frames] float32 P(two or more
        talk)) from one run of the network, either task."""
        scores = self.log_probs(chunks)
        if self.task == "count":
            return np.argmax(scores, axis=-1).astype(np.int64), np.exp(scores[..., 2]).astype(np.float32)
        sizes = powerset_mapping(self.max_speakers, self.max_simultaneous).sum(axis=1)
        count = sizes[np.argmax(scores, axis=-1)].astype(np.int64)
        return count, np.exp(scores[..., sizes >= 2]).sum(axis=-1).astype(np.float32)

    def activity(self, chunks: np.ndarray) -> ChunkActivity:
        if self.task != "powerset":
            raise ValueError(f"{self.path}: an overlap detector says how many speakers talk, not which")
        scores = self.log_probs(chunks)
        mapping = powerset_mapping(self.max_speakers, self.max_simultaneous)
        hard = mapping[np.argmax(scores, axis=-1)].astype(np.uint8)
        probs = np.exp(scores)
        soft = (probs @ mapping.astype(np.float32)).astype(np.float32)
        sizes = mapping.sum(axis=1)
        speech = (1.0 - probs[..., 0]).astype(np.float32)  # class 0 is the empty set
        overlap = probs[..., sizes >= 2].sum(axis=-1).astype(np.float32)
        return ChunkActivity(hard, soft, speech, overlap)
