"""Export a segmentation model to ONNX: the pattern of pipelines/export/onnx_export.py.

Same rules (fixed opset, no producer version or doc strings, onnx.checker, sha256 returned, so
the same weights always give the same file), but the output is per frame, so its frame axis is
dynamic too. A separate function rather than a change to `export_waveform_model`, whose output
name and axes are the embedding models' contract.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch

from pipelines.export.onnx_export import INPUT_NAME, OPSET

OUTPUT_NAME = "log_probs"  # [batch, frames, classes] powerset log-probabilities


def export_segmentation_model(module: torch.nn.Module, out: Path, example_seconds: float = 5.0) -> str:
    """Write `module` (waveform [B, T] -> [B, frames, classes]) as ONNX at `out`; returns sha256."""
    import onnx

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    example = torch.zeros(2, int(16000 * example_seconds))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the LSTM's batch_first / dynamic-axes export notices
        torch.onnx.export(
            module,
            (example,),
            str(out),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch", 1: "samples"}, OUTPUT_NAME: {0: "batch", 1: "frames"}},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    model = onnx.load(str(out))
    model.producer_version = ""
    model.doc_string = ""
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return hashlib.sha256(out.read_bytes()).hexdigest()
