"""What the INT8 student's LSTMs would lose on a CPU without VNNI, where onnxruntime's U8S8 kernels
add pairs of u8 x s8 products into int16 with saturation (VPMADDUBSW; onnxruntime's quantization
docs name it and suggest `reduce_range` or U8U8 where it hurts). With VNNI or AMX the sums are
exact, so this cannot be measured here; it is emulated instead.

    .venv/bin/python research/scripts/int8_saturation.py [--model voiceflow/models/student-int8.onnx]

Runs the model on 2.2 s segments of the AMI excerpts (the staggered layout, 32 per batch) and takes
the inputs of its two DynamicQuantizeLSTM layers. Then, per layer:
1. how often a pair of adjacent products leaves int16, with activations quantized per tensor to
   u8 as DynamicQuantizeLinear does (the recurrent state per step over the batch);
2. the layer re-run in numpy with exact integer sums and with saturated pair sums, and how far
   apart their outputs are (and how far the exact emulation is from onnxruntime, which bounds
   how much the emulation itself can be trusted).

2026-12-06, the shipped student-int8 (Xeon with AVX-512 VNNI and AMX, so onnxruntime's own sums
are exact): 0.01-1.6 % of the LSTM dot products would saturate somewhere (layer 2's recurrent
product the most); the emulated layer-2 output moves by 0.0036 on average (max 0.38) with
saturation, its mean over a segment keeps cosine 0.9994 to the exact one, layer 3 0.99995 (each
layer fed onnxruntime's own input, so the two do not compound here). The exact emulation is itself
0.0015 from onnxruntime on average (onnxruntime quantizes the state slightly differently), so these
are orders of magnitude, not predictions. The dev suite gave the same figures to the digit on this
machine and on an earlier one whose CPU was not recorded. Not measured on a CPU without VNNI: on
such nodes run the suite there before trusting the gate's figures, and if they differ, quantize
with `reduce_range` (7-bit weights: no pair can leave int16) and gate that.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from pipelines.paths import shared_data_dir
from voiceflow.audio import load_audio

SEGMENT = 35200  # 2.2 s: the student's staggered segment
HOP = 9600
INT16 = (-32768, 32767)


# DynamicQuantizeLSTM's inputs by position (onnxruntime contrib op): X, W, R, B, ..., W_scale, ..., R_scale.
X, W, R, B, W_SCALE, R_SCALE = 0, 1, 2, 3, 8, 10


def quantized_lstms(model: onnx.ModelProto) -> list[Any]:
    """Every DynamicQuantizeLSTM node, in graph order."""
    return [n for n in model.graph.node if n.op_type == "DynamicQuantizeLSTM"]


def quantize_u8(x: np.ndarray) -> tuple[np.ndarray, float, int]:
    """DynamicQuantizeLinear: (u8 values as int64, scale, zero point) over the whole tensor."""
    lo, hi = min(0.0, float(x.min())), max(0.0, float(x.max()))
    scale = (hi - lo) / 255 if hi > lo else 1.0
    zero = int(np.clip(np.round(-lo / scale), 0, 255))
    return np.clip(np.round(x / scale) + zero, 0, 255).astype(np.int64), scale, zero


def pair_sums(xq: np.ndarray, w: np.ndarray) -> np.ndarray:
    """[N, K/2, C]: x[2j] w[2j] + x[2j+1] w[2j+1], the int16 partial sums of a VPMADDUBSW kernel."""
    return xq[:, 0::2, None] * w[None, 0::2, :] + xq[:, 1::2, None] * w[None, 1::2, :]


def int_matmul(xq: np.ndarray, zero: int, w: np.ndarray, saturate: bool) -> np.ndarray:
    raw = np.clip(pair_sums(xq, w), *INT16).sum(axis=1) if saturate else xq @ w
    return raw - zero * w.sum(axis=0)[None, :]


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def emulate_lstm(x: np.ndarray, weights: dict[str, np.ndarray], node: Any, saturate: bool) -> np.ndarray:
    """`node` (ONNX LSTM gates i, o, f, c) from zero state with dynamically quantized products."""
    w, r = (weights[node.input[i]][0].astype(np.int64) for i in (W, R))
    w_scale, r_scale = (weights[node.input[i]][0] for i in (W_SCALE, R_SCALE))
    bias = weights[node.input[B]][0]
    hidden = r.shape[0]
    steps, batch, width = x.shape
    xq, x_scale, x_zero = quantize_u8(x.reshape(-1, width))
    gates_in = int_matmul(xq, x_zero, w, saturate).reshape(steps, batch, -1) * (x_scale * w_scale)
    gates_in = gates_in + bias[: 4 * hidden] + bias[4 * hidden :]
    h = np.zeros((batch, hidden))
    c = np.zeros((batch, hidden))
    out = []
    for t in range(steps):
        hq, h_scale, h_zero = quantize_u8(h)
        g = gates_in[t] + int_matmul(hq, h_zero, r, saturate) * (h_scale * r_scale)
        i, o, f, cand = np.split(g, 4, axis=1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(cand)
        h = sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.stack(out)


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the segment means (over time) of two [T, N, D] outputs, averaged over segments."""
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    return float(np.mean(np.sum(ma * mb, axis=1) / np.linalg.norm(ma, axis=1) / np.linalg.norm(mb, axis=1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="voiceflow/models/student-int8.onnx")
    ap.add_argument("--segments", type=int, default=32)
    args = ap.parse_args()
    model = onnx.load(args.model)
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    layers = quantized_lstms(model)
    for name in [n.input[X] for n in layers] + [n.output[0] for n in layers]:
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    audio = [load_audio(p) for p in sorted((shared_data_dir() / "ami-excerpts").glob("*.wav"))]
    segments = np.stack([a[s : s + SEGMENT] for a in audio for s in range(0, len(a) - SEGMENT, 3 * HOP)])
    batch = segments[: args.segments].astype(np.float32)
    results = session.run(None, {session.get_inputs()[0].name: batch})[1:]
    inputs, references = results[: len(layers)], results[len(layers) :]
    for index, (node, x, reference) in enumerate(zip(layers, inputs, references, strict=True)):
        label = f"LSTM {index + 2}"  # the first LSTM stays float
        w, r = (weights[node.input[i]][0].astype(np.int64) for i in (W, R))
        xq, _, _ = quantize_u8(x.reshape(-1, x.shape[-1]))
        ref = reference.squeeze(1)
        states = np.concatenate([quantize_u8(ref[t])[0] for t in range(ref.shape[0])])
        for what, q, mat in (("input", xq, w), ("recurrent", states, r)):
            sums = pair_sums(q, mat)
            outside = (sums < INT16[0]) | (sums > INT16[1])
            print(f"{label} {what}: dot products with a saturating pair {outside.any(axis=1).mean():.4f}")
        x64 = x.astype(np.float64)
        exact = emulate_lstm(x64, weights, node, saturate=False)
        saturated = emulate_lstm(x64, weights, node, saturate=True)
        print(f"{label}: exact emulation vs onnxruntime mean |d| {np.abs(exact - ref).mean():.4f}")
        print(
            f"{label}: saturated vs exact mean |d| {np.abs(saturated - exact).mean():.4f} "
            f"(max {np.abs(saturated - exact).max():.3f}); segment-mean cosine {mean_cosine(saturated, exact):.5f}"
        )


if __name__ == "__main__":
    main()
