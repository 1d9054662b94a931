"""Teacher (GE2E) embeddings of every crop, computed once and cached on disk.

The teacher is the costliest thing in a training step (a 3-layer LSTM over 160 frames), so
it runs once per crop, on the clean crop: the student learns to map augmented audio onto the
clean teacher embedding, which also teaches it robustness the teacher itself lacks.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from pipelines.training.data import Crop, Dataset, crop_audio

TEACHER_VERSION = "ge2e-resemblyzer-0.1.4"


def crops_fingerprint(dataset: Dataset, crops: list[Crop]) -> str:
    """Identifies the exact audio the cache was computed on (keys, offsets, lengths, sample sums)."""
    h = hashlib.sha256(TEACHER_VERSION.encode())
    h.update(str(dataset.crop_samples).encode())
    for crop in crops:
        utt = dataset.utterances[crop.utterance]
        h.update(f"{utt.key}:{crop.start}:{len(utt.audio)}:{float(utt.audio[:4000].sum()):.6f};".encode())
    return h.hexdigest()[:20]


def default_teacher(stft: str = "op") -> torch.nn.Module:
    """The pretrained GE2E behind its front end; "op" is the bundled file's STFT, which the cache uses."""
    from pipelines.nn.ge2e import GE2EEncoder, WaveformEmbedder

    return WaveformEmbedder(GE2EEncoder.pretrained(), stft=stft).eval()


def compute_teacher_embeddings(
    dataset: Dataset,
    crops: list[Crop],
    teacher: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int = 64,
    progress: bool = True,
) -> np.ndarray:
    from tqdm import tqdm

    out: list[np.ndarray] = []
    batches = range(0, len(crops), batch_size)
    # torch.stft(return_complex=False) in the reference front end warns on every call; the
    # front end is frozen to reproduce the bundled ONNX, so the warning is noise here.
    warnings.filterwarnings("ignore", message="stft with return_complex=False")
    with torch.inference_mode():
        for i in tqdm(batches, desc="teacher embeddings", disable=not progress, unit="batch"):
            wave = np.stack([crop_audio(dataset, c) for c in crops[i : i + batch_size]])
            out.append(teacher(torch.from_numpy(wave)).numpy())
    return np.concatenate(out) if out else np.zeros((0, 256), np.float32)


def cached_teacher_embeddings(
    dataset: Dataset, crops: list[Crop], cache_dir: Path, progress: bool = True
) -> np.ndarray:
    """Load the cached teacher embeddings for `crops`, computing and storing them on a miss."""
    key = crops_fingerprint(dataset, crops)
    path = Path(cache_dir) / f"teacher-{key}.npy"
    if path.exists():
        emb = np.load(path)
        if emb.shape[0] == len(crops):
            return emb
    emb = compute_teacher_embeddings(dataset, crops, default_teacher(), progress=progress).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    tmp.replace(path)  # atomic: a killed run never leaves a half-written cache behind
    path.with_suffix(".json").write_text(json.dumps({"teacher": TEACHER_VERSION, "crops": len(crops)}) + "\n")
    return emb
