"""Hostile audio shared by the hardening tests of the Control API and the inference pod."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf


def flac(samples: np.ndarray, rate: int, total_samples: int | None = None) -> bytes:
    """`samples` as FLAC; with `total_samples`, STREAMINFO claims that length instead (a header that lies)."""
    out = io.BytesIO()
    sf.write(out, samples, rate, format="FLAC")
    data = bytearray(out.getvalue())
    if total_samples is not None:  # rewrite STREAMINFO's 36-bit total_samples, keeping the 4 bits before it
        value = int.from_bytes(data[21:26], "big")
        data[21:26] = ((value & ~((1 << 36) - 1)) | total_samples).to_bytes(5, "big")
    return bytes(data)
