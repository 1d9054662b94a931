"""Export a segmentation model to ONNX with the embedding models' exporter, plus its metadata.

Same rules (fixed opset, no producer version or doc strings, onnx.checker, sha256 returned, so
the same weights always give the same file); the output is per frame, so its frame axis is
dynamic too. `export_segmentation_checkpoint` is what `voiceflow export RUN/model.pt` calls
when the checkpoint is a segmentation model; its `.json` sidecar tells the inference side how
to cut chunks and decode the classes without importing any training code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from pipelines.evaluation.manifest import git_commit
from pipelines.export.checkpoint import ExportResult
from pipelines.export.onnx_export import export_waveform_model

OUTPUT_NAME = "log_probs"  # [batch, frames, classes] powerset log-probabilities
FRAME_SAMPLES = 320  # 20 ms output frames (see model.py)


def export_segmentation_model(module: torch.nn.Module, out: Path, example_seconds: float = 5.0) -> str:
    """Write `module` (waveform [B, T] -> [B, frames, classes]) as ONNX at `out`; returns sha256."""
    return export_waveform_model(
        module, out, example_seconds, output_name=OUTPUT_NAME, output_axes={0: "batch", 1: "frames"}
    )


def is_segmentation_checkpoint(path: Path) -> bool:
    """True for a `model.pt` written by the segmentation trainer (its `format` says so)."""
    from pipelines.segmentation.train import MODEL_FORMAT

    state = torch.load(Path(path), map_location="cpu", weights_only=False)
    return isinstance(state, dict) and state.get("format") == MODEL_FORMAT


def segmentation_metadata(state: dict[str, Any], sha: str, parameters: int) -> dict[str, Any]:
    """The sidecar: everything a consumer needs to run the model, and the recipe that made it."""
    from pipelines.segmentation.model import SegmentationSpec

    config = state.get("config", {})
    spec = SegmentationSpec(**state["spec"])
    name = str(config.get("name", "segmentation"))
    return {
        "kind": "segmentation",
        "name": name,
        "version": f"{name}-{sha[:12]}",
        "sha256": sha,
        "sample_rate": 16000,
        "chunk_seconds": float(config.get("data", {}).get("chunk_seconds", 5.0)),
        "frame_samples": FRAME_SAMPLES,
        "max_speakers": spec.max_speakers,
        "max_simultaneous": spec.max_simultaneous,
        "classes": spec.classes,
        "task": spec.task,
        "output": OUTPUT_NAME,
        "architecture": {"type": f"mel-conv-bilstm-{spec.task}", **spec.to_dict()},
        "parameters": parameters,
        "config": config,
        "metrics": state.get("metrics", {}),
        "git_commit": git_commit(),
    }


def export_segmentation_checkpoint(checkpoint: Path, out: Path) -> ExportResult:
    """`model.pt` of the segmentation trainer -> `out` (ONNX) + `out`.json metadata."""
    from pipelines.segmentation.model import parameter_count
    from pipelines.segmentation.train import load_model

    state = torch.load(Path(checkpoint), map_location="cpu", weights_only=False)
    model = load_model(Path(checkpoint))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    chunk_seconds = float(state.get("config", {}).get("data", {}).get("chunk_seconds", 5.0))
    sha = export_segmentation_model(model, out, example_seconds=chunk_seconds)
    meta = segmentation_metadata(state, sha, parameter_count(model))
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return ExportResult(out, sha, meta)
