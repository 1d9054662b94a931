"""INT8 post-training quantization with onnxruntime.quantization (dynamic: no calibration set).

Only the encoder's weights are quantized. The front end stays float: its DFT and mel matrices
are exact transforms, and int8 on them would shift every feature the encoder was trained on.
LSTM layers after the first are quantized too (onnxruntime's DynamicQuantizeLSTM): in the recurrent
students the LSTMs are nearly all of the compute. The first LSTM stays float: its input is the
front end's linear mel power, whose range int8 activations cannot hold (quantizing every LSTM of the
shipped student gave a mean cosine to float of 0.60 on AMI dev00 windows; leaving the first in float,
0.997, at 1.8x less CPU per window: research/scripts/quantized_lstm.py).

`quantize_bundle` makes the INT8 bundle of an already exported float bundle: the same reading
(window or staggered per-frame), its own background mean and PLDA, fitted on the quantized model's
embeddings of the training audio (never the float model's), and no carried calibration (that was
measured on the float reading).
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

QUANTIZED_OPS = ["Conv", "MatMul", "Gemm", "LSTM"]
# Metadata of the float reading that an INT8 copy must not inherit: its calibration was measured
# on the float embeddings, and its identity is the float file's.
FLOAT_ONLY_KEYS = ("calibration", "merge_threshold_shift", "plda", "sha256", "version")


def encoder_node_names(model_path: Path) -> tuple[list[str], list[str]]:
    """(encoder nodes, front-end nodes) by the module path torch.onnx writes into node names."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    frontend = [n.name for n in graph.node if n.name.startswith("/frontend/")]
    encoder = [n.name for n in graph.node if not n.name.startswith("/frontend/")]
    return encoder, frontend


def float_nodes(model_path: Path) -> list[str]:
    """The nodes INT8 leaves in float: the front end, and the first LSTM (it reads the front end)."""
    import onnx

    _, frontend = encoder_node_names(model_path)
    lstms = [n.name for n in onnx.load(str(model_path)).graph.node if n.op_type == "LSTM"]
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
        )
        model = onnx.load(str(raw))
        model.producer_version = ""  # keep the output byte-stable across onnxruntime patch versions
        model.doc_string = ""
        onnx.checker.check_model(model)
        onnx.save(model, str(dst))
    return hashlib.sha256(dst.read_bytes()).hexdigest()


def quantize_bundle(src: Path, out: Path, data_root: Path | None = None) -> Any:
    """The INT8 bundle of the float bundle at `src` (its .onnx), written at `out`, sealed.

    Background mean and PLDA come from the training audio the model's recorded training config
    names (under `data_root` when given); returns the sealed voiceflow.bundle.ModelBundle.
    """
    import json

    import numpy as np

    from pipelines.export.background import checkpoint_background
    from pipelines.export.plda import checkpoint_data_root, export_plda
    from voiceflow.bundle import index_path, present_parts, verify_bundle, write_index
    from voiceflow.embedding import background_path

    src, out = Path(src), Path(out)
    verify_bundle(src)  # never quantize a float model whose parts do not belong together
    meta = json.loads(src.with_suffix(".json").read_text())
    if meta.get("quantization", "none") != "none":
        raise ValueError(f"{src} is already quantized ({meta['quantization']})")
    if src.resolve() == out.resolve():
        raise ValueError("the INT8 bundle must be written beside, not over, its float source")
    for stale in present_parts(out).values():
        stale.unlink()
    index_path(out).unlink(missing_ok=True)
    sha = quantize_int8(src, out)
    training = dict(meta.get("training", {}).get("config", {}))
    if data_root is not None:
        training["data"] = {**training.get("data", {}), "data_root": str(data_root)}
    name = str(meta.get("name", src.stem))
    quantized = {k: v for k, v in meta.items() if k not in FLOAT_ONLY_KEYS}
    quantized.update(
        quantization="int8",
        sha256=sha,
        version=f"{name}-int8-{sha[:12]}",
        quantized_from={"sha256": meta.get("sha256"), "version": meta.get("version")},
    )
    out.with_suffix(".json").write_text(json.dumps(quantized, indent=2, sort_keys=True) + "\n")
    np.save(background_path(out), checkpoint_background(out, training))
    export_plda(out, checkpoint_data_root(training))
    return write_index(out)
