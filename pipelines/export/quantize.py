"""INT8 post-training quantization with onnxruntime.quantization (dynamic: no calibration set).

Only the encoder's weights are quantized. The front end stays float: its DFT and mel matrices
are exact transforms, and int8 on them would shift every feature the encoder was trained on.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path


def encoder_node_names(model_path: Path) -> tuple[list[str], list[str]]:
    """(encoder nodes, front-end nodes) by the module path torch.onnx writes into node names."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    frontend = [n.name for n in graph.node if n.name.startswith("/frontend/")]
    encoder = [n.name for n in graph.node if not n.name.startswith("/frontend/")]
    return encoder, frontend


def quantize_int8(src: Path, dst: Path) -> str:
    """Write an INT8 (weights; activations quantized on the fly) copy of `src` at `dst`; returns sha256."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    _, frontend = encoder_node_names(src)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "q.onnx"
        quantize_dynamic(
            str(src),
            str(raw),
            weight_type=QuantType.QInt8,
            nodes_to_exclude=frontend,
            op_types_to_quantize=["Conv", "MatMul", "Gemm"],
        )
        model = onnx.load(str(raw))
        model.producer_version = ""  # keep the output byte-stable across onnxruntime patch versions
        model.doc_string = ""
        onnx.checker.check_model(model)
        onnx.save(model, str(dst))
    return hashlib.sha256(dst.read_bytes()).hexdigest()
