"""Fine-tune GE2E to be read in staggered segments instead of once per window.

    .venv/bin/python scripts/staggered_finetune.py --out runs/staggered-k3 [--streams 3] [--steps 1500]

K staggered streams (scripts/stateful_ge2e_probe.py) = GE2E run over overlapping segments of
R = 1.6 K / (K - 1) s every R / K s, each window read off the per-frame output of the segment whose
start is the latest one at least 1.6 s before the window's end. So a window is read with 0..R/K s
of audio before it, and every frame is read K times instead of 8. This trains GE2E's own weights
for exactly that reading: a random R-second segment goes through the network once; at random
window ends inside its serving range [1.6 s, R) the per-frame embedding is pulled towards frozen
GE2E's embedding of that 1.6 s window alone (cosine + relational loss), on LibriSpeech
training-split speakers and the AMI train excerpts with the student pipeline's augmentation.
Writes model.pt in `voiceflow export` format (a stride-1 recurrent student: GE2E's tensors) and
prints the held-out cosine before and after. A feasibility spike for docs/pipelines.md.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from pipelines.export.frame_reader import FrameReader
from pipelines.nn.frontend import HOP_LENGTH
from pipelines.nn.ge2e import GE2EEncoder, WaveformEmbedder
from pipelines.training.augment import AugmentAssets, augment, load_assets
from pipelines.training.config import AugmentConfig, DataConfig
from pipelines.training.data import SAMPLE_RATE, librispeech_split, load_ami, read_audio
from pipelines.training.losses import relational_distillation
from pipelines.training.student import StudentSpec
from voiceflow.staggered import segment_layout

WINDOW = round(1.6 * SAMPLE_RATE)


def draw_segments(
    pool: list[np.ndarray],
    rng: np.random.Generator,
    size: int,
    length: int,
    aug: AugmentConfig | None,
    assets: AugmentAssets,
) -> torch.Tensor:
    out = []
    for _ in range(size):
        audio = pool[int(rng.integers(len(pool)))]
        start = int(rng.integers(0, max(1, len(audio) - length)))
        crop = audio[start : start + length]
        crop = np.pad(crop, (0, length - len(crop)))
        out.append(augment(crop, rng, aug, assets) if aug is not None else crop)
    return torch.from_numpy(np.stack(out).astype(np.float32))


def pairs(
    student: WaveformEmbedder, teacher: WaveformEmbedder, wave: torch.Tensor, ends: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """(student readouts, teacher window embeddings) for every segment x window end."""
    frames = FrameReader(student)(wave)[:, torch.as_tensor(ends // HOP_LENGTH)]  # [B, E, 256]
    windows = torch.stack([wave[:, e - WINDOW : e] for e in ends], dim=1).reshape(-1, WINDOW)
    with torch.no_grad():
        target = teacher(windows).reshape(len(wave), len(ends), -1)
    return frames.reshape(-1, frames.shape[-1]), target.reshape(-1, target.shape[-1])


def held_out_cosine(
    student: WaveformEmbedder, teacher: WaveformEmbedder, val: list[torch.Tensor], ends: np.ndarray
) -> float:
    student.eval()
    with torch.no_grad():
        cos = [torch.nn.functional.cosine_similarity(*pairs(student, teacher, w, ends), dim=1) for w in val]
    student.train()
    return float(torch.cat(cos).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--streams", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--ends", type=int, default=6, help="window ends read per segment")
    parser.add_argument("--lr", type=float, default=5e-4)
    args = parser.parse_args()
    if args.streams < 2:
        parser.error("--streams must be at least 2")
    torch.manual_seed(0)
    torch.set_num_threads(2)
    data = DataConfig()
    root = data.root()
    train_files, held_out = librispeech_split(root / data.librispeech)
    pool = [read_audio(p) for p in train_files] + [u.audio for u in load_ami(root / data.ami, list(data.ami_files))]
    val_pool = [read_audio(p) for p in held_out[:20]]
    assets = load_assets(root / data.augmentation)
    aug = AugmentConfig(p_rir=0.5, p_overlap=0.0)
    teacher = WaveformEmbedder(GE2EEncoder.pretrained(), stft="conv").eval()
    student = WaveformEmbedder(GE2EEncoder.pretrained(), stft="conv").train()
    length, _ = segment_layout(WINDOW, args.streams)
    serving = np.arange(WINDOW, length, HOP_LENGTH)  # window ends a segment serves (in samples)
    val_rng = np.random.default_rng(99)
    val = [draw_segments(val_pool, val_rng, 16, length, None, assets) for _ in range(6)]
    val_ends = serving[np.linspace(0, len(serving) - 1, 8).round().astype(int)]
    before = held_out_cosine(student, teacher, val, val_ends)
    print(f"held-out cosine to the windowed teacher before: {before:.4f}", flush=True)
    optimizer = torch.optim.AdamW(student.encoder.parameters(), lr=args.lr, weight_decay=0.0)
    rng = np.random.default_rng(0)
    started = time.monotonic()
    for step in range(1, args.steps + 1):
        wave = draw_segments(pool, rng, args.batch, length, aug, assets)
        ends = np.sort(rng.choice(serving, size=args.ends, replace=False))
        emb, target = pairs(student, teacher, wave, ends)
        loss = (1 - torch.nn.functional.cosine_similarity(emb, target, dim=1)).mean()
        loss = loss + 10.0 * relational_distillation(emb, target)
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, step / 30) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.encoder.parameters(), 5.0)
        optimizer.step()
        if step % 100 == 0 or step == args.steps:
            cos = held_out_cosine(student, teacher, val, val_ends)
            elapsed = time.monotonic() - started
            print(f"step {step}: loss {loss.item():.4f}, held-out cosine {cos:.4f}, {elapsed:.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    spec = StudentSpec(arch="lstm", frame_stride=1, lstm_layers=3, lstm_hidden=256, pooling="mean")
    torch.save(
        {
            "format": "voiceflow-student-1",
            "spec": spec.to_dict(),
            "stft": "conv",
            "encoder": student.encoder.state_dict(),
            "config": {"name": f"ge2e-staggered-k{args.streams}", "data": {"crop_seconds": 1.6}},
            "metrics": {"val_cos": held_out_cosine(student, teacher, val, val_ends), "val_cos_before": before},
        },
        args.out / "model.pt",
    )
    print(f"-> {args.out / 'model.pt'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
