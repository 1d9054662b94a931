"""Audio in: files and byte streams to 16 kHz mono float32, with clear errors for bad input."""

from __future__ import annotations

import io
import re
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


class AudioTooLarge(AudioError):
    """Usable audio over a size limit (servers answer 413 rather than 422)."""


# A file may carry at most this many channels (8: 7.1 surround); more is refused from the header.
MAX_CHANNELS = 8
# Decoding work allowed per second of the duration limit: 192 kHz stereo. With the duration limit this
# bounds the samples a decoder must produce (frames x channels) before any of them is decoded.
MAX_DECODE_SAMPLES_PER_LIMIT_SECOND = MAX_SAMPLE_RATE * 2
# A decompression bomb decodes to far more than its size: 895 KB of FLAC holding 25 min at 192 kHz is
# 576 MB as 16-bit PCM, 640x. Real recordings stay far below MAX_EXPANSION (FLAC ~2x, Vorbis ~10-40x,
# Opus at 6 kbit/s 128x, all against 16-bit PCM); files decoding to less than EXPANSION_FLOOR_BYTES are
# never refused for it, so short synthetic or silent clips pass.
MAX_EXPANSION = 256
EXPANSION_FLOOR_BYTES = 32 * 1024 * 1024
# Frames decoded at a time: memory while decoding is this block plus the 16 kHz mono result.
DECODE_BLOCK_FRAMES = 1 << 16
# libsndfile's frame count when a header does not say (a FLAC streamed with total_samples = 0).
_UNKNOWN_FRAMES = 2**62


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


def clip_finite(samples: np.ndarray) -> np.ndarray:
    """float32 in [-1, 1]: NaN/inf refused, finite out-of-range samples clipped (as docs/protocol.md says).

    The check runs in the input's precision, before the cast: a float64 1e308 is finite and clipped,
    where casting first would turn it into inf and refuse it.
    """
    check_finite(samples)
    return np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False)


def max_decoded_frames(
    frames: int, channels: int, sample_rate: int, max_seconds: float, name: str, encoded_bytes: int | None = None
) -> int:
    """The most frames a decoder may produce for this header; AudioError/AudioTooLarge before any decoding.

    `frames` may be unknown (libsndfile's huge sentinel): then the bound is the limit alone and the decoder
    enforces it block by block. `encoded_bytes`, the file's size, bounds the expansion (MAX_EXPANSION).
    """
    try:
        check_sample_rate(sample_rate)
    except AudioError as exc:
        raise AudioError(f"{name}: {exc}") from None
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"{name}: {channels} channels; at most {MAX_CHANNELS} are supported")
    if frames <= 0:
        raise AudioError(f"{name}: audio file is empty")
    by_duration = int(max_seconds * sample_rate)
    by_work = int(max_seconds * MAX_DECODE_SAMPLES_PER_LIMIT_SECOND) // channels
    limit = min(by_duration, by_work)
    if frames < _UNKNOWN_FRAMES and frames > limit:
        if frames > by_duration:
            raise AudioTooLarge(
                f"{name}: audio is {frames / sample_rate:.0f} s long, more than the limit of {max_seconds:.0f} s"
            )
        raise AudioTooLarge(
            f"{name}: {frames / sample_rate:.0f} s of {channels}-channel {sample_rate} Hz audio is more to decode "
            f"than {max_seconds:.0f} s of {MAX_SAMPLE_RATE} Hz stereo"
        )
    if encoded_bytes and frames < _UNKNOWN_FRAMES:
        pcm_bytes = frames * channels * 2
        if pcm_bytes > max(EXPANSION_FLOOR_BYTES, MAX_EXPANSION * encoded_bytes):
            raise AudioTooLarge(
                f"{name}: {encoded_bytes} bytes would decode to {frames / sample_rate:.0f} s of {channels}-channel "
                f"{sample_rate} Hz audio, {pcm_bytes // encoded_bytes}x its size (at most {MAX_EXPANSION}x)"
            )
    return limit


def _decode(
    source: str | io.BytesIO, sample_rate: int | None, max_seconds: float, name: str
) -> tuple[np.ndarray | None, float]:
    """(samples at `sample_rate`, duration in seconds); `sample_rate` None decodes and checks but keeps nothing."""
    try:
        handle = sf.SoundFile(source)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{name}: not a readable audio file ({_short(exc)})") from exc
    size = source.getbuffer().nbytes if isinstance(source, io.BytesIO) else Path(source).stat().st_size
    with handle:
        limit = max_decoded_frames(handle.frames, handle.channels, handle.samplerate, max_seconds, name, size)
        return _decode_blocks(handle, sample_rate, limit, name)


def _decode_blocks(
    handle: sf.SoundFile, sample_rate: int | None, max_frames: int, name: str
) -> tuple[np.ndarray | None, float]:
    """Decode, mix down and resample block by block; stops as soon as more than `max_frames` come out."""
    source_rate = int(handle.samplerate)
    keep = sample_rate is not None
    stream = (
        soxr.ResampleStream(source_rate, sample_rate, 1, dtype="float32")
        if sample_rate is not None and source_rate != sample_rate
        else None
    )
    parts: list[np.ndarray] = []
    decoded = 0
    while True:
        try:
            # float64 so that a finite float/double sample beyond float32's range is clipped, not inf.
            block = handle.read(DECODE_BLOCK_FRAMES, dtype="float64", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(f"{name}: corrupt audio data ({_short(exc)})") from exc
        if len(block) == 0:
            break
        decoded += len(block)
        if decoded > max_frames:
            raise AudioTooLarge(f"{name}: audio decodes to more than {max_frames / source_rate:.0f} s, over the limit")
        try:
            mono = to_mono(clip_finite(block))
        except AudioError as exc:
            raise AudioError(f"{name}: {exc}") from None
        if keep:
            parts.append(mono if stream is None else stream.resample_chunk(mono))
    if decoded == 0:
        raise AudioError(f"{name}: audio file is empty")
    if not keep:
        return None, decoded / source_rate
    if stream is not None:
        parts.append(stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32), decoded / source_rate


def _samples(decoded: tuple[np.ndarray | None, float]) -> np.ndarray:
    samples, _ = decoded
    assert samples is not None  # a decode with a sample rate keeps its samples
    return samples


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
    return _samples(_decode(str(path), sample_rate, max_seconds, str(path)))


def decode_audio_bytes(
    data: bytes, sample_rate: int = SAMPLE_RATE, max_seconds: float = MAX_SECONDS_DEFAULT, name: str = "upload"
) -> np.ndarray:
    """Decode an in-memory file by its content (never by a file name)."""
    if not data:
        raise AudioError(f"{name}: empty body")
    return _samples(_decode(io.BytesIO(data), sample_rate, max_seconds, name))


def probe_audio_bytes(data: bytes, max_seconds: float = MAX_SECONDS_DEFAULT, name: str = "upload") -> float:
    """Duration in seconds of an in-memory file, decoded in full (so corrupt data is found) but not kept:
    checking an upload costs one decode block of memory, whatever its length."""
    if not data:
        raise AudioError(f"{name}: empty body")
    return _decode(io.BytesIO(data), None, max_seconds, name)[1]


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
        return clip_finite(np.frombuffer(data, dtype="<f4"))
    raise AudioError(f"unknown encoding {encoding!r}; expected one of {', '.join(PCM_ENCODINGS)}")


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    sf.write(str(path), np.asarray(samples, dtype=np.float32), sample_rate, subtype="PCM_16", format="WAV")


# libsndfile names an in-memory source by its repr ("Error opening <_io.BytesIO object at 0x7f...>: ..."):
# an address means nothing to a user and leaks a detail of the server's memory.
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>:?\s*")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = _OBJECT_REPR.sub("", text).removeprefix("Error opening ").strip() or type(exc).__name__
    return text[:160]
