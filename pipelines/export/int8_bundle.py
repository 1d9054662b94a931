"""The INT8 bundle of an already exported float bundle (`voiceflow export MODEL.onnx --quantize int8`).

The same reading (window or staggered per-frame), quantized as `pipelines.export.quantize` does;
its own PLDA, fitted on the INT8 model's embeddings of the training audio (never the float
model's); no carried calibration (that was measured on the float reading).

The background mean is the float bundle's, moved by what quantization moves: plus the difference
of the two models' mean embeddings over the training audio the recorded config names. Not a fresh
mean over that audio: a bundle's stored mean may come from other audio (training stores one at its
end; the shipped student's differs from a recomputed one by cosine 0.968), and the INT8 copy must
centre its embeddings where the float model it replaces does (0.9999 after the shift).
Kept apart from `quantize`, which the evaluation package reaches through the checkpoint export:
building a PLDA belongs to the clustering entry point, and the two stay independent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipelines.export.background import checkpoint_background
from pipelines.export.plda import checkpoint_data_root, export_plda
from pipelines.export.quantize import quantize_int8
from voiceflow.bundle import ModelBundle, index_path, present_parts, verify_bundle, write_index
from voiceflow.embedding import background_path

# Metadata of the float reading that an INT8 copy must not inherit: its calibration was measured
# on the float embeddings, and its identity and PLDA are the float file's.
FLOAT_ONLY_KEYS = ("calibration", "merge_threshold_shift", "plda", "sha256", "version")


def quantize_bundle(src: Path, out: Path, data_root: Path | None = None) -> ModelBundle:
    """The INT8 bundle of the float bundle at `src` (its .onnx), written at `out`, sealed.

    Background mean and PLDA come from the training audio the model's recorded training config
    names (under `data_root` when given); returns the sealed voiceflow.bundle.ModelBundle.
    """
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
    float_fresh = checkpoint_background(src, training)
    float_mean = np.load(background_path(src)) if background_path(src).is_file() else float_fresh
    shift = checkpoint_background(out, training) - float_fresh
    np.save(background_path(out), (float_mean + shift).astype(np.float32))
    export_plda(out, checkpoint_data_root(training))
    return write_index(out)
