"""Export a waveform -> embedding torch module to ONNX, deterministically.

Bit-for-bit reproducible: fixed opset, no doc strings, no producer version stamped, and a
post-export check with onnx.checker. Batch and time axes are dynamic.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch

OPSET = 17
INPUT_NAME = "waveform"
OUTPUT_NAME = "embedding"


def export_waveform_model(
    module: torch.nn.Module,
    out: Path,
    example_seconds: float = 1.6,
    output_name: str = OUTPUT_NAME,
    output_axes: dict[int, str] | None = None,
) -> str:
    """Write `module` (waveform [B, T] -> output) as ONNX at `out`; returns the file's sha256.

    Defaults are the embedding models' contract (output "embedding" [B, D], batch axis dynamic);
    frame-level models name their output and add its frame axis.
    """
    import onnx

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    example = torch.zeros(2, int(16000 * example_seconds))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(out),
            input_names=[INPUT_NAME],
            output_names=[output_name],
            dynamic_axes={INPUT_NAME: {0: "batch", 1: "samples"}, output_name: output_axes or {0: "batch"}},
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
