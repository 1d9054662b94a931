"""Decoding hostile audio: sizes are bounded from the header, decoding runs in blocks (issue 26)."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voiceflow.audio import (
    MAX_CHANNELS,
    AudioError,
    AudioTooLarge,
    decode_audio_bytes,
    load_audio,
    max_decoded_frames,
    pcm_bytes_to_float,
    probe_audio_bytes,
)


def flac_bytes(samples: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, rate, format="FLAC")
    return out.getvalue()


def with_total_samples(flac: bytes, total: int) -> bytes:
    """The same FLAC with STREAMINFO's 36-bit total_samples rewritten: a header that lies."""
    assert flac[:4] == b"fLaC"
    data = bytearray(flac)
    start = 8 + 13  # after "fLaC" and the block header, total_samples ends STREAMINFO's bytes 13..17
    value = int.from_bytes(data[start : start + 5], "big")
    value = (value & ~((1 << 36) - 1)) | total
    data[start : start + 5] = value.to_bytes(5, "big")
    return bytes(data)


def test_header_promising_far_too_much_is_refused_before_decoding() -> None:
    bomb = with_total_samples(flac_bytes(np.zeros(16000, dtype=np.float32), 16000), (1 << 36) - 1)
    assert len(bomb) < 1000
    with pytest.raises(AudioTooLarge, match="more than the limit"):
        decode_audio_bytes(bomb)


def test_a_file_decoding_to_hundreds_of_times_its_size_is_refused() -> None:
    # The bomb: under 1 MB of FLAC holding 25 minutes at 192 kHz (576 MB as 16-bit PCM). It is
    # within the duration limit, so only its expansion gives it away; the old code decoded it (+2.3 GB).
    bomb = with_total_samples(flac_bytes(np.zeros(192000, dtype=np.float32), 192000), 25 * 60 * 192000)
    with pytest.raises(AudioTooLarge, match=r"x its size \(at most 256x\)"):
        decode_audio_bytes(bomb)
    with pytest.raises(AudioTooLarge):
        probe_audio_bytes(bomb)
    # Short clips are never refused for compressing well: 10 s of silence is ~1000x smaller as FLAC.
    assert decode_audio_bytes(flac_bytes(np.zeros(160000, dtype=np.float32), 16000)).shape == (160000,)


def test_eight_channel_655_khz_flac_is_a_clear_error_not_a_memory_error() -> None:
    # 3 h by its header (under the 4 h limit): the old code allocated 226 GB for it and died of MemoryError.
    bomb = with_total_samples(flac_bytes(np.zeros((4096, 8), dtype=np.float32), 655350), 655350 * 3 * 3600)
    with pytest.raises(AudioError, match="655350 Hz is outside"):
        decode_audio_bytes(bomb)


def test_too_many_channels_refused_from_the_header() -> None:
    data = flac_bytes(np.zeros((1000, 2), dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="channels"):
        max_decoded_frames(1000, MAX_CHANNELS + 1, 16000, 60.0, "x")
    assert max_decoded_frames(1000, 2, 16000, 60.0, "x") == 60 * 16000
    assert decode_audio_bytes(data).shape == (1000,)


def test_decode_work_is_bounded_per_channel() -> None:
    # 8 channels at 192 kHz for the whole limit is 4x the work of 192 kHz stereo: refused from the header.
    with pytest.raises(AudioTooLarge, match="more to decode"):
        max_decoded_frames(192000 * 60, 8, 192000, 60.0, "x")


def test_decoding_runs_in_blocks_with_bounded_memory() -> None:
    # 30 s of 192 kHz stereo silence: ~20 KB of FLAC, 46 MB as float32 if decoded in one piece (and
    # 23 MB as 16-bit PCM: under the expansion floor, so not refused as a bomb).
    flac = flac_bytes(np.zeros((30 * 192000, 2), dtype=np.float32), 192000)
    tracemalloc.start()
    try:
        audio = decode_audio_bytes(flac)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert audio.shape == (30 * 16000,)
    # The 16 kHz mono result is 1.9 MB; a block of float64 stereo is 1 MB.
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"


def test_a_header_without_a_length_is_a_clear_error() -> None:
    # total_samples = 0 ("unknown"): libsndfile reports a huge frame count; the old code tried to allocate it.
    flac = with_total_samples(flac_bytes(np.zeros(16000 * 3, dtype=np.float32), 16000), 0)
    with pytest.raises(AudioError):
        decode_audio_bytes(flac, max_seconds=1.0)


def test_finite_out_of_range_samples_are_clipped_and_non_finite_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.wav"
    sf.write(path, np.array([1e308, -1e308, 0.5, 2.0]), 16000, subtype="DOUBLE")
    assert load_audio(path).tolist() == [1.0, -1.0, 0.5, 1.0]
    sf.write(path, np.array([0.0, np.nan, 0.5, 0.1]), 16000, subtype="DOUBLE")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(path)
    assert pcm_bytes_to_float(np.array([3.0, -0.5], dtype="<f4").tobytes(), "pcm_f32le").tolist() == [1.0, -0.5]


def test_error_messages_never_show_an_object_repr() -> None:
    with pytest.raises(AudioError) as info:
        decode_audio_bytes(b"this is not audio, just bytes" * 4)
    assert "object at 0x" not in str(info.value)
    assert "BytesIO" not in str(info.value)
