"""`voiceflow export CHECKPOINT --out model.onnx [--quantize int8]`: a trained student to ONNX.

The exported graph is WaveformEmbedder(student): waveform in, L2-normalised embedding out,
front end included, so `voiceflow.embedding.EmbeddingModel.load(path)` serves it unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pipelines.export.onnx_export import export_waveform_model
from pipelines.nn.ge2e import WaveformEmbedder
from pipelines.training.staggered import segment_hop_samples
from pipelines.training.student import StudentSpec, build_encoder
from voiceflow import SAMPLE_RATE
from voiceflow.bundle import index_path, present_parts, write_index


@dataclass(frozen=True)
class ExportResult:
    path: Path
    sha256: str
    metadata: dict[str, Any]
    bundle_digest: str = ""


def load_checkpoint(path: Path) -> dict[str, Any]:
    state = torch.load(Path(path), map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or "encoder" not in state:
        raise ValueError(f"{path} is not a VoiceFlow student checkpoint (model.pt or checkpoint.pt)")
    return state


def checkpoint_spec(state: dict[str, Any]) -> dict[str, Any]:
    # a final model.pt carries its spec; a resume checkpoint's architecture lives in its config
    return dict(state["spec"] if "spec" in state else state["config"]["student"])


def student_from_checkpoint(state: dict[str, Any]) -> WaveformEmbedder:
    """Rebuild the exact exported module from either a final model.pt or a resume checkpoint.pt."""
    spec = StudentSpec.from_mapping(checkpoint_spec(state))
    module = WaveformEmbedder(build_encoder(spec), stft=state.get("stft", "conv"))
    module.encoder.load_state_dict(state["encoder"])
    return module.eval()


ARCHITECTURE_NAMES = {"ecapa": "ecapa-lite", "lstm": "pooled-lstm"}
ENCODER_INPUT = {
    "ecapa": "log + mean normalisation inside the encoder",
    "lstm": "linear mel power, {frame_stride} frames per LSTM step ({pooling}) inside the encoder",
}


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def student_metadata(state: dict[str, Any], sha: str, quantized: str | None) -> dict[str, Any]:
    config = state.get("config", {})
    spec = state.get("spec") or config.get("student", {})
    arch = str(spec.get("arch", "ecapa"))
    encoder_input = ENCODER_INPUT[arch].format(**StudentSpec.from_mapping(spec).to_dict())
    name = str(config.get("name", "student"))
    return {
        "name": name,
        "version": f"{name}-{sha[:12]}",
        "embedding_dim": int(spec.get("embedding_dim", 256)),
        "sample_rate": SAMPLE_RATE,
        "window_seconds": float(config.get("data", {}).get("crop_seconds", 1.6)),
        "architecture": {"type": ARCHITECTURE_NAMES[arch], **spec},
        "quantization": quantized or "none",
        "source": "trained by `voiceflow train` (distilled from GE2E), exported by pipelines/export/checkpoint.py",
        "frontend": "in-graph: increase-only gain to -30 dBFS, STFT n_fft 400 hop 160 periodic Hann as a "
        "DFT Conv1d, Slaney mel 40 bands, power 2; " + encoder_input,
        "sha256": sha,
        # the recipe travels with the model so a manifest can be built from the file alone
        "training": {"config": config, "metrics": state.get("metrics", {}), "steps": state.get("step")},
    }


def export_checkpoint(
    checkpoint: Path,
    out: Path,
    quantize: str | None = None,
    streams: int | None = None,
    calibrate: bool = True,
    background: bool = True,
) -> ExportResult:
    """Export a student checkpoint to `out` (+ `out`.json metadata); INT8 when quantize='int8'.

    With --quantize the file at `out` is the quantized model (what gets served); the float
    model it was made from is kept beside it as `<stem>.fp32.onnx` for comparison. With
    `streams` K (a stride-1 recurrent model) the output is per frame and the engine reads it in K
    staggered streams (voiceflow.staggered); None takes the K the model was trained for
    (`student.streams`), with its `segment_hop_seconds` when it set one (metadata
    `segment_hop_samples`); 0 forces the one-window export. A checkpoint calibrated at the end of
    training (pipelines/export/calibration.py) passes its merge-threshold shift on to an export of
    the reading it was measured on, unless `calibrate` is False.
    """
    from pipelines.export.quantize import quantize_int8
    from pipelines.nn.frame_reader import FRAMES_OUTPUT, FrameReader
    from pipelines.nn.frontend import HOP_LENGTH

    state = load_checkpoint(checkpoint)
    out = Path(out)
    for stale in present_parts(out).values():  # a re-export must not pass on the last model's sidecars
        stale.unlink()
    index_path(out).unlink(missing_ok=True)
    if quantize not in (None, "int8"):
        raise ValueError(f"unsupported quantization {quantize!r} (only int8)")
    spec = checkpoint_spec(state)
    trained_streams = int(spec.get("streams", 0))
    if streams is None:
        streams = trained_streams or None
    elif streams == 0:
        streams = None
    # The trained segment hop belongs to the trained streams; another K is read with its own hop.
    hop = segment_hop_samples(float(spec.get("segment_hop_seconds", 0.0))) if streams == trained_streams else 0
    if streams is not None and (streams < 2 or quantize):
        raise ValueError("--streams needs K >= 2 (or 0 for a window model) and a float export")
    float_path = out.with_name(out.stem + ".fp32.onnx") if quantize else out
    student = student_from_checkpoint(state)
    if streams is None:
        sha = export_waveform_model(student, float_path)
    else:
        sha = export_waveform_model(FrameReader(student), float_path, 2.4, FRAMES_OUTPUT, {0: "batch", 1: "frames"})
    if quantize:
        sha = quantize_int8(float_path, out)
    meta = student_metadata(state, sha, quantize)
    if streams is not None:
        meta.update(readout="frames", streams=streams, frame_hop_samples=HOP_LENGTH)
    if streams is not None and hop:
        meta.update(segment_hop_samples=hop)
    meta.update(carried_calibration(state, streams or 0, hop, quantize) if calibrate else {})
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    if background:
        write_background(out, state, int(meta["embedding_dim"]))
    bundle = write_index(out)
    return ExportResult(out, sha, meta, bundle.digest)


def write_background(out: Path, state: dict[str, Any], dimension: int) -> None:
    """The bundle's background mean: the one training stored in the checkpoint, else computed now
    from the training audio its config names (pipelines/export/background.py)."""
    import numpy as np

    from pipelines.export.background import checkpoint_background, stored_background
    from voiceflow.embedding import background_path

    mean = stored_background(state, dimension)
    if mean is None:
        mean = checkpoint_background(out, state.get("config", {}))
    np.save(background_path(out), mean)


def carried_calibration(state: dict[str, Any], streams: int, segment_hop: int, quantize: str | None) -> dict[str, Any]:
    """The checkpoint's calibration (pipelines/export/calibration.py) when this export is the reading
    it was measured on; another reading (streams, segment hop, INT8) would need its own, so it gets none."""
    calibration = dict(state.get("calibration") or {})
    reading = calibration.get("calibration", {}).get("reading", {})
    if not calibration or quantize or (reading.get("streams"), reading.get("segment_hop_samples", 0)) != (
        streams,
        segment_hop,
    ):
        return {}
    return calibration
