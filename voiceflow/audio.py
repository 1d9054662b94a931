"""Audio in: files and byte streams to 16 kHz mono float32, with clear errors for bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from voiceflow import SAMPLE_RATE

# A bound on what one decode may allocate: 4 h at 16 kHz mono float32 is ~0.9 GB.
MAX_SECONDS_DEFAULT = 4 * 3600.0
PCM_ENCODINGS = ("pcm_s16le", "pcm_f32le")
MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 192000


class AudioError(ValueError):
    """Input that is not usable audio; the message is one clear line for the user."""


def resample(samples: np.ndarray, source_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    check_sample_rate(source_rate)
    if source_rate == target_rate:
        return np.ascontiguousarray(samples, dtype=np.float32)
    return np.asarray(soxr.resample(samples.astype(np.float32), source_rate, target_rate), dtype=np.float32)


def check_sample_rate(sample_rate: int) -> None:
    if not isinstance(sample_rate, int | np.integer) or isinstance(sample_rate, bool):
        raise AudioError(f"sample rate must be an integer, got {sample_rate!r}")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"sample rate {sample_rate} Hz is outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz")


def to_mono(samples: np.ndarray) -> np.ndarray:
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def check_finite(samples: np.ndarray) -> None:
    if not np.all(np.isfinite(samples)):
        raise AudioError("audio contains NaN or infinite samples")


def _decode(source: str | io.BytesIO, sample_rate: int, max_seconds: float, name: str) -> np.ndarray:
    try:
        info = sf.info(source)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{name}: not a readable audio file ({_short(exc)})") from exc
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"{name}: audio file is empty")
    if info.frames / info.samplerate > max_seconds:
        raise AudioError(
            f"{name}: audio is {info.frames / info.samplerate:.0f} s long, more than the limit of {max_seconds:.0f} s"
        )
    if isinstance(source, io.BytesIO):
        source.seek(0)
    try:
        data, rate = sf.read(source, dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{name}: corrupt audio data ({_short(exc)})") from exc
    data = to_mono(np.asarray(data, dtype=np.float32))
    if data.size == 0:
        raise AudioError(f"{name}: audio file is empty")
    check_finite(data)
    return resample(data, int(rate), sample_rate)


def load_audio(
    path: str | Path, sample_rate: int = SAMPLE_RATE, max_seconds: float = MAX_SECONDS_DEFAULT
) -> np.ndarray:
    """WAV/FLAC/OGG at any rate, mono or mixed down, as float32 at `sample_rate`."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty")
    return _decode(str(path), sample_rate, max_seconds, str(path))


def decode_audio_bytes(
    data: bytes, sample_rate: int = SAMPLE_RATE, max_seconds: float = MAX_SECONDS_DEFAULT, name: str = "upload"
) -> np.ndarray:
    """Decode an in-memory file by its content (never by a file name)."""
    if not data:
        raise AudioError(f"{name}: empty body")
    return _decode(io.BytesIO(data), sample_rate, max_seconds, name)


def sniff_audio_format(data: bytes) -> str | None:
    """The container named by the magic bytes, or None: 'wav', 'flac' or 'ogg'."""
    if len(data) >= 12 and data[:4] in (b"RIFF", b"RF64") and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"OggS":
        return "ogg"
    return None


def pcm_bytes_to_float(data: bytes, encoding: str) -> np.ndarray:
    """Raw little-endian PCM -> float32 in [-1, 1]; refuses partial samples and non-finite floats."""
    if encoding == "pcm_s16le":
        if len(data) % 2:
            raise AudioError("pcm_s16le frame length is not a multiple of 2 bytes")
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    if encoding == "pcm_f32le":
        if len(data) % 4:
            raise AudioError("pcm_f32le frame length is not a multiple of 4 bytes")
        samples = np.frombuffer(data, dtype="<f4").astype(np.float32)
        check_finite(samples)
        return samples
    raise AudioError(f"unknown encoding {encoding!r}; expected one of {', '.join(PCM_ENCODINGS)}")


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    sf.write(str(path), np.asarray(samples, dtype=np.float32), sample_rate, subtype="PCM_16", format="WAV")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
