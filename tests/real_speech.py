"""Real speech the tests can always read: tests/data/dev00.wav, 30 s of an AMI meeting kept in the
repository (tests/data/README.md), so the tests that need real audio never skip."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEV00 = Path(__file__).resolve().parent / "data" / "dev00.wav"


def dev00(seconds: float = 30.0) -> np.ndarray:
    """The first `seconds` of dev00.wav, 16 kHz float32 mono."""
    from voiceflow.audio import load_audio

    return load_audio(DEV00)[: int(seconds * 16000)].astype(np.float32)
