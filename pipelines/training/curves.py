"""Training curves as JSON (machine-readable, the manifest links it) and PNG (for people)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_curves(history: list[dict[str, Any]], out_dir: Path) -> tuple[Path, Path]:
    import matplotlib

    matplotlib.use("Agg")  # headless: training runs in pods and CI
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    json_path, png_path = out_dir / "curves.json", out_dir / "curves.png"
    json_path.write_text(json.dumps(history, indent=1) + "\n")
    steps = [h for h in history if h["kind"] == "step"]
    epochs = [h for h in history if h["kind"] == "epoch"]
    vals = [h for h in history if h["kind"] == "val"]  # the segmentation trainer's validations
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    if steps:
        x = [h["step"] for h in steps]
        for key in ("loss", "distill", "centered", "cls"):
            if key in steps[0]:
                axes[0].plot(x, [h[key] for h in steps], label=key)
    axes[0].set_xlabel("step")
    axes[0].set_title("training loss")
    axes[0].legend()
    if epochs:
        x = [h["step"] for h in epochs]
        axes[1].plot(x, [h["val_cos"] for h in epochs], "o-", label="val cos(student, teacher)")
        axes[1].plot(x, [1 - h["val_eer"] for h in epochs], "s-", label="val 1 - EER (student)")
        if epochs[0].get("teacher_eer") is not None:
            axes[1].axhline(1 - epochs[0]["teacher_eer"], color="gray", ls="--", label="1 - EER (teacher)")
    if vals:
        x = [h["step"] for h in vals]
        for key in ("val_loss", "val_seg_error", "val_overlap_recall", "val_overlap_precision"):
            if key in vals[0]:
                axes[1].plot(x, [h[key] for h in vals], "o-", label=key.removeprefix("val_"))
    axes[1].set_xlabel("step")
    axes[1].set_title("held-out speakers")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)
    return json_path, png_path
