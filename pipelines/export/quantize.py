"""INT8 post-training quantization with onnxruntime.quantization (dynamic: no calibration set).

Only the encoder's weights are quantized. The front end stays float: its DFT and mel matrices
are exact transforms, and int8 on them would shift every feature the encoder was trained on.
LSTM layers after the first are quantized too (onnxruntime's DynamicQuantizeLSTM): in the recurrent
students the LSTMs are nearly all of the compute. The first LSTM stays float: its input is the
front end's linear mel power, whose range int8 activations cannot hold (quantizing every LSTM of the
shipped student gave a mean cosine to float of 0.60 on AMI dev00 windows; leaving the first in float,
0.9997 with per-channel weight scales, at 1.8x less CPU per window: research/scripts/quantized_lstm.py).

`pipelines.export.int8_bundle` makes the INT8 bundle of an already exported float bundle.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

QUANTIZED_OPS = ["Conv", "MatMul", "Gemm", "LSTM"]


def encoder_node_names(model_path: Path) -> tuple[list[str], list[str]]:
    """(encoder nodes, front-end nodes) by the module path torch.onnx writes into node names."""
    import onnx

    return _encoder_and_frontend(onnx.load(str(model_path)).graph)


def _encoder_and_frontend(graph: Any) -> tuple[list[str], list[str]]:
    frontend = [n.name for n in graph.node if n.name.startswith("/frontend/")]
    encoder = [n.name for n in graph.node if not n.name.startswith("/frontend/")]
    return encoder, frontend


def float_nodes(model_path: Path) -> list[str]:
    """The nodes INT8 leaves in float: the front end, and the first LSTM (it reads the front end)."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    _, frontend = _encoder_and_frontend(graph)
    lstms = [n.name for n in graph.node if n.op_type == "LSTM"]
    return frontend + lstms[:1]


def quantize_int8(src: Path, dst: Path) -> str:
    """Write an INT8 (weights; activations quantized on the fly) copy of `src` at `dst`; returns sha256."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep_float = float_nodes(src)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "q.onnx"
        quantize_dynamic(
            str(src),
            str(raw),
            weight_type=QuantType.QInt8,
            nodes_to_exclude=keep_float,
            op_types_to_quantize=QUANTIZED_OPS,
            # one scale per output channel: 10x less error than one per tensor on the shipped student's
            # LSTMs (1 - cosine to float 0.0003 vs 0.003 on AMI dev00 windows), at the same speed
            per_channel=True,
        )
        model = onnx.load(str(raw))
        model.producer_version = ""  # keep the output byte-stable across onnxruntime patch versions
        model.doc_string = ""
        onnx.checker.check_model(model)
        onnx.save(model, str(dst))
    return hashlib.sha256(dst.read_bytes()).hexdigest()
