"""Export a segmentation model to ONNX with the embedding models' exporter.

Same rules (fixed opset, no producer version or doc strings, onnx.checker, sha256 returned, so
the same weights always give the same file); the output is per frame, so its frame axis is
dynamic too.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pipelines.export.onnx_export import export_waveform_model

OUTPUT_NAME = "log_probs"  # [batch, frames, classes] powerset log-probabilities


def export_segmentation_model(module: torch.nn.Module, out: Path, example_seconds: float = 5.0) -> str:
    """Write `module` (waveform [B, T] -> [B, frames, classes]) as ONNX at `out`; returns sha256."""
    return export_waveform_model(
        module, out, example_seconds, output_name=OUTPUT_NAME, output_axes={0: "batch", 1: "frames"}
    )
