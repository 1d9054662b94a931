"""Silero VAD v5 split into the two halves the engine runs (voiceflow.vad.VADModel).

The bundled `silero_vad.onnx` is called once per 32 ms frame: 512 samples, the previous frame's
last 64 as context, and an LSTM state. Only its LSTM is recurrent. Its front end (an STFT, four
convolutions) sees one frame and its context and nothing else, so it can read every frame of a
stream step, or of a whole recording, in one call, written as matrix products over all of them
(`encoder_graph`). The decoder (the LSTM, a 1x1
convolution, a sigmoid) then runs over those frames as one sequence in one call, where the source
model needs one call per frame.

This module writes those two graphs from the bundled model's own weights, for the 16 kHz branch
(the engine resamples everything to 16 kHz):

    python -m pipelines.export.silero_split            # writes voiceflow/models/silero_vad.{encoder,decoder}.onnx

The output is deterministic (tests rebuild it and compare bytes), and its probabilities equal the
source model's to within 1e-5 (tests, on real speech). The halves give bit-identical results
whatever the number of frames or streams per call (tests).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from voiceflow.vad import CHUNK, CONTEXT, DEFAULT_VAD_MODEL, SILERO_SAMPLE_RATE, STATE_SIZE, split_model_paths

OPSET = 16
HIDDEN = STATE_SIZE
FRAME_INPUT = CHUNK + CONTEXT
SILERO_INLINE_PREFIX = "__Inline_0__"


def silero_weights(path: Path) -> dict[str, np.ndarray]:
    """The 16 kHz branch's constants of a Silero VAD v5 ONNX file, by their PyTorch names."""
    model = onnx.load(str(path))
    by_output = {out: node for node in model.graph.node for out in node.output}
    branches = [n for n in model.graph.node if n.op_type == "If"]
    condition = by_output.get(branches[0].input[0]) if len(branches) == 1 else None
    if condition is None or condition.op_type != "Equal" or "sr" not in condition.input:
        raise ValueError(f"{path}: not a Silero VAD v5 graph (one If on `sr == rate` expected)")
    rates = [by_output[name] for name in condition.input if name in by_output]
    if len(rates) != 1 or rates[0].op_type != "Constant":
        raise ValueError(f"{path}: not a Silero VAD v5 graph (the If's rate is not a constant)")
    if int(numpy_helper.to_array(rates[0].attribute[0].t)) != SILERO_SAMPLE_RATE:
        raise ValueError(f"{path}: the If's then-branch is not the {SILERO_SAMPLE_RATE} Hz model")
    then_branch = next(a.g for a in branches[0].attribute if a.name == "then_branch")
    weights = {}
    for node in then_branch.node:
        if node.op_type == "Constant":
            weights[node.output[0].split(SILERO_INLINE_PREFIX)[-1]] = numpy_helper.to_array(node.attribute[0].t)
    return weights


def source_probabilities(audio: np.ndarray, source: Path = DEFAULT_VAD_MODEL) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, final state) of the source model itself, one call per 32 ms frame as
    silero-vad's OnnxWrapper drives it: the reference the halves are measured against (tests,
    benchmarks/bench_vad.py)."""
    import onnxruntime as ort

    from voiceflow.embedding import session_options

    session = ort.InferenceSession(str(source), session_options(1), providers=["CPUExecutionProvider"])
    state = np.zeros((2, 1, STATE_SIZE), dtype=np.float32)
    context = np.zeros((1, CONTEXT), dtype=np.float32)
    rate = np.array(SILERO_SAMPLE_RATE, dtype=np.int64)
    probs = np.empty(len(audio) // CHUNK, dtype=np.float32)
    for i in range(len(probs)):
        x = np.concatenate([context, np.asarray(audio[None, i * CHUNK : (i + 1) * CHUNK], dtype=np.float32)], axis=1)
        out, state = session.run(None, {"input": x, "state": state, "sr": rate})
        context = x[:, -CONTEXT:]
        probs[i] = out.reshape(-1)[0]
    return probs, state


def _tensor(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(value), name)


def conv_as_matrix(weight: np.ndarray, steps: int, stride: int, pad: int) -> tuple[np.ndarray, int]:
    """A 1-D convolution over `steps` time steps as one matrix on the time-major flattened input.

    weight [C_out, C_in, K] -> ([steps * C_in, steps_out * C_out], steps_out): x flattened as
    x[t * C_in + c] times the matrix is the convolution's output flattened the same way. Silero's
    encoder sees 4, 4, 2 and 1 time steps per frame, so onnxruntime's Conv runs one tiny matrix
    product per frame; as these matrices every frame of a call is one large product (~3x less CPU)."""
    c_out, c_in, kernel = weight.shape
    steps_out = (steps + 2 * pad - kernel) // stride + 1
    matrix = np.zeros((steps, c_in, steps_out, c_out), dtype=np.float32)
    for out_step in range(steps_out):
        for tap in range(kernel):
            in_step = out_step * stride - pad + tap
            if 0 <= in_step < steps:
                matrix[in_step, :, out_step, :] += weight[:, :, tap].T
    return matrix.reshape(steps * c_in, steps_out * c_out), steps_out


def encoder_graph(weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """[N, 576] frames with their context -> [N, 128] features: Silero's STFT and encoder as in the
    source graph (the input reflect-padded by 64 samples; the magnitude of a 256-point STFT every 128
    samples, 4 per frame; four convolutions with ReLU), written as matrix products over all frames."""
    basis = weights["stft.forward_basis_buffer"][:, 0, :]  # [258, 256]: 129 real rows, then 129 imaginary
    bins = basis.shape[0] // 2
    initializers = [
        _tensor("pads", np.array([0, 0, 0, CONTEXT], np.int64)),
        _tensor("hop_rows", np.array([-1, 5, 128], np.int64)),  # 640 padded samples = 5 hops of 128
        _tensor("zero", np.array([0], np.int64)),
        _tensor("one", np.array([1], np.int64)),
        _tensor("four", np.array([4], np.int64)),
        _tensor("five", np.array([5], np.int64)),
        _tensor("basis_t", np.ascontiguousarray(basis.T)),
        _tensor("halves", np.array([bins, bins], np.int64)),
        _tensor("time_major", np.array([-1, 4 * bins], np.int64)),
    ]
    nodes = [
        helper.make_node("Pad", ["input", "pads"], ["padded"], mode="reflect"),
        helper.make_node("Reshape", ["padded", "hop_rows"], ["hops"]),
        # window t = hops t and t + 1: the STFT's 256-sample windows every 128 samples
        helper.make_node("Slice", ["hops", "zero", "four", "one"], ["first_halves"]),
        helper.make_node("Slice", ["hops", "one", "five", "one"], ["second_halves"]),
        helper.make_node("Concat", ["first_halves", "second_halves"], ["windows"], axis=2),
        helper.make_node("MatMul", ["windows", "basis_t"], ["spectrum"]),
        helper.make_node("Split", ["spectrum", "halves"], ["real", "imag"], axis=2),
        helper.make_node("Mul", ["real", "real"], ["real2"]),
        helper.make_node("Mul", ["imag", "imag"], ["imag2"]),
        helper.make_node("Add", ["real2", "imag2"], ["power"]),
        helper.make_node("Sqrt", ["power"], ["magnitude"]),
        helper.make_node("Reshape", ["magnitude", "time_major"], ["x0"]),
    ]
    steps = 4
    for i, stride in enumerate((1, 2, 2, 1)):
        matrix, steps = conv_as_matrix(weights[f"encoder.{i}.reparam_conv.weight"], steps, stride, pad=1)
        bias = np.tile(weights[f"encoder.{i}.reparam_conv.bias"], steps).astype(np.float32)
        initializers += [_tensor(f"w{i}", matrix), _tensor(f"b{i}", bias)]
        nodes += [
            helper.make_node("MatMul", [f"x{i}", f"w{i}"], [f"product{i}"]),
            helper.make_node("Add", [f"product{i}", f"b{i}"], [f"c{i}"]),
            helper.make_node("Relu", [f"c{i}"], ["features" if i == 3 else f"x{i + 1}"]),
        ]
    if steps != 1:
        raise ValueError(f"the encoder should end on one time step per frame, not {steps}")
    graph = helper.make_graph(
        nodes,
        "silero_vad_encoder",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", FRAME_INPUT])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", HIDDEN])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="voiceflow")


def _onnx_gate_order(matrix: np.ndarray) -> np.ndarray:
    """PyTorch stacks an LSTM's gates i, f, g, o; ONNX wants i, o, f, c."""
    i, f, g, o = np.split(matrix, 4, axis=0)
    return np.concatenate([i, o, f, g], axis=0)


def decoder_graph(weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """([T, B, 128] features, [2, B, 128] state, [B] lengths) -> ([T, B] probabilities, state):
    Silero's LSTM over each stream's T frames, then its 1x1 convolution and sigmoid per frame."""
    bias = np.concatenate(
        [_onnx_gate_order(weights["decoder.rnn.bias_ih"]), _onnx_gate_order(weights["decoder.rnn.bias_hh"])]
    )
    initializers = [
        _tensor("W", _onnx_gate_order(weights["decoder.rnn.weight_ih"])[None]),
        _tensor("R", _onnx_gate_order(weights["decoder.rnn.weight_hh"])[None]),
        _tensor("B", bias[None]),
        _tensor("out_weight", weights["decoder.decoder.2.weight"][0]),  # [128, 1]
        _tensor("out_bias", weights["decoder.decoder.2.bias"]),
        _tensor("h_index", np.array([0], np.int64)),
        _tensor("c_index", np.array([1], np.int64)),
        _tensor("direction_axis", np.array([1], np.int64)),
        _tensor("unit_axis", np.array([2], np.int64)),
    ]
    nodes = [
        helper.make_node("Gather", ["state", "h_index"], ["h0"], axis=0),
        helper.make_node("Gather", ["state", "c_index"], ["c0"], axis=0),
        helper.make_node(
            "LSTM", ["features", "W", "R", "B", "lengths", "h0", "c0"], ["Y", "Y_h", "Y_c"], hidden_size=HIDDEN
        ),
        helper.make_node("Concat", ["Y_h", "Y_c"], ["stateN"], axis=0),
        helper.make_node("Squeeze", ["Y", "direction_axis"], ["hidden"]),
        helper.make_node("Relu", ["hidden"], ["active"]),
        helper.make_node("MatMul", ["active", "out_weight"], ["logit0"]),
        helper.make_node("Add", ["logit0", "out_bias"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["probability"]),
        helper.make_node("Squeeze", ["probability", "unit_axis"], ["probabilities"]),
    ]
    graph = helper.make_graph(
        nodes,
        "silero_vad_decoder",
        [
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["T", "B", HIDDEN]),
            helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, "B", HIDDEN]),
            helper.make_tensor_value_info("lengths", TensorProto.INT32, ["B"]),
        ],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["T", "B"]),
            helper.make_tensor_value_info("stateN", TensorProto.FLOAT, [2, "B", HIDDEN]),
        ],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="voiceflow")


def split_silero(source: Path, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write the two halves of `source` (beside it, or into `out_dir`); returns their paths."""
    weights = silero_weights(source)
    encoder_path, decoder_path = split_model_paths(source)
    if out_dir is not None:
        encoder_path, decoder_path = out_dir / encoder_path.name, out_dir / decoder_path.name
    for model, path in ((encoder_graph(weights), encoder_path), (decoder_graph(weights), decoder_path)):
        onnx.checker.check_model(model)
        path.write_bytes(model.SerializeToString())
    return encoder_path, decoder_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DEFAULT_VAD_MODEL, help="a Silero VAD v5 ONNX file")
    parser.add_argument("--out-dir", type=Path, default=None, help="where to write (default: beside the source)")
    args = parser.parse_args(argv)
    for path in split_silero(args.source, args.out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
