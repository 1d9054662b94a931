"""How much INT8 each LSTM of an exported student takes: speed per window and cosine to float.

    .venv/bin/python research/scripts/quantized_lstm.py [--model voiceflow/models/student.onnx]

Quantizes (onnxruntime dynamic INT8) every LSTM of the model, then all but the first, then all but
the first two, each with one weight scale per tensor and per output channel, and prints for each
the CPU time per 1.6 s window at batch 1 (one thread) and the cosine of its per-frame output to
the float model's on AMI dev00 windows (every 0.5 s).

2026-12-06, shipped student (float 8.6-9.4 ms per window): every LSTM INT8: 3.3 ms, mean cosine
0.60 (the embeddings collapse); first LSTM float: 4.6-4.8 ms, cosine 0.9971 per tensor (min
0.9951), 0.99973 per channel (min 0.99949); first two float: 6.75 ms, cosine 0.9988 per tensor.
pipelines/export/quantize.py keeps the first LSTM in float, with per-channel scales.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

from pipelines.export.quantize import encoder_node_names
from pipelines.paths import shared_data_dir
from voiceflow.audio import load_audio
from voiceflow.embedding import session_options

WINDOW = 25600


def run(path: Path | str, windows: np.ndarray) -> tuple[np.ndarray, float]:
    """(outputs for every window, ms per window at batch 1)."""
    session = ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out = session.run(None, {name: windows})[0]
    start = time.perf_counter()
    for _ in range(20):
        session.run(None, {name: windows[:1]})
    return out, (time.perf_counter() - start) / 20 * 1000


def last_frame_cosine(ref: np.ndarray, out: np.ndarray) -> np.ndarray:
    r, o = (ref[:, -1], out[:, -1]) if ref.ndim == 3 else (ref, out)
    return (r * o).sum(-1) / np.linalg.norm(r, axis=-1) / np.linalg.norm(o, axis=-1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="voiceflow/models/student.onnx")
    args = parser.parse_args()
    src = Path(args.model)
    _, frontend = encoder_node_names(src)
    lstms = [n.name for n in onnx.load(str(src)).graph.node if n.op_type == "LSTM"]
    audio = load_audio(shared_data_dir() / "ami-excerpts" / "dev00.wav")
    windows = np.stack([audio[s : s + WINDOW] for s in range(0, len(audio) - WINDOW, 8000)]).astype(np.float32)
    ref, float_ms = run(src, windows)
    print(f"float: {float_ms:.2f} ms per window")
    with tempfile.TemporaryDirectory() as tmp:
        for keep in range(len(lstms)):
            for per_channel in (False, True):
                dst = Path(tmp) / f"keep{keep}-{per_channel}.onnx"
                quantize_dynamic(
                    str(src),
                    str(dst),
                    weight_type=QuantType.QInt8,
                    nodes_to_exclude=frontend + lstms[:keep],
                    op_types_to_quantize=["LSTM"],
                    per_channel=per_channel,
                )
                out, ms = run(dst, windows)
                cos = last_frame_cosine(ref, out)
                scales = "per channel" if per_channel else "per tensor"
                print(
                    f"first {keep} LSTM float, {scales}: {ms:.2f} ms per window, "
                    f"cosine mean {cos.mean():.5f} min {cos.min():.5f}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
