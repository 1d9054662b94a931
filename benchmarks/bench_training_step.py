"""Seconds per training step (batch build + forward + backward) for a preset; prints only.

A staggered preset (`student.streams`, e.g. `full`) is timed as it trains: segments, the live
teacher on the windows they serve, the per-frame readouts (teacher time counted in the step).

.venv/bin/python benchmarks/bench_training_step.py [--preset full] [--steps 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict

import numpy as np
import torch

from pipelines.training.augment import load_assets
from pipelines.training.config import load_preset
from pipelines.training.data import build_dataset
from pipelines.training.loop import build_student, initialise_student, live_teacher_for, make_batch, teacher_on
from pipelines.training.losses import cosine_distillation
from pipelines.training.staggered import StaggeredReading
from pipelines.training.student import StudentSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="full")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_preset(args.preset)
    reading = StaggeredReading.from_config(config)
    data = build_dataset(reading.data_config(config.data) if reading else config.data, config.seed)
    teacher = live_teacher_for("augmented") if reading else None
    assets = load_assets(config.data.root() / config.data.augmentation)
    s = config.student
    model = build_student(StudentSpec.from_mapping(asdict(s))).train()
    initialise_student(model, s.init)  # the preset's start: its speed can depend on the weights
    batch_t, step_t = [], []
    for step in range(args.steps):
        t0 = time.perf_counter()
        idx = np.random.default_rng(step).permutation(len(data.train))[: config.batch_size]
        crops = [data.train[int(j)] for j in idx]
        wave = torch.from_numpy(make_batch(data, crops, np.random.default_rng(step), config, assets))
        t1 = time.perf_counter()
        if reading is not None and teacher is not None:
            ends = reading.draw_ends(np.random.default_rng(step), config.loss.windows_per_segment)
            target = teacher_on(teacher, reading.windows(wave, ends))
            cosine_distillation(reading.readouts(model, wave, ends), target).backward()
        else:
            model(wave).sum().backward()
        t2 = time.perf_counter()
        batch_t.append(t1 - t0)
        step_t.append(t2 - t1)
    steps = len(data.train) // config.batch_size * config.epochs
    b, f = float(np.median(batch_t)), float(np.median(step_t))
    print(f"preset {args.preset}: batch {config.batch_size}, {args.threads} threads")
    print(f"  build+augment batch: {b:.3f} s   forward+backward: {f:.3f} s   step: {b + f:.3f} s")
    print(f"  {steps} steps -> ~{steps * (b + f) / 60:.1f} min of training on this machine, as loaded now")


if __name__ == "__main__":
    main()
