from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voiceflow.audio import (
    AudioError,
    decode_audio_bytes,
    load_audio,
    pcm_bytes_to_float,
    resample,
    sniff_audio_format,
    write_wav,
)


def test_load_resamples_and_mixes_down(tmp_path: Path) -> None:
    stereo = np.stack([np.full(44100, 0.5), np.full(44100, -0.1)], axis=1).astype(np.float32)
    sf.write(tmp_path / "s.flac", stereo, 44100)
    audio = load_audio(tmp_path / "s.flac")
    assert audio.dtype == np.float32
    assert abs(len(audio) - 16000) <= 1
    assert np.allclose(audio[1000:-1000], 0.2, atol=0.01)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"not audio at all" * 10, "not a readable audio file"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "not a"),
    ],
)
def test_bad_files_give_one_clear_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=message) as info:
        load_audio(path)
    assert "\n" not in str(info.value)


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="directory"):
        load_audio(tmp_path)


def test_too_long_is_refused_before_decoding(tmp_path: Path) -> None:
    write_wav(tmp_path / "long.wav", np.zeros(16000 * 5, dtype=np.float32))
    with pytest.raises(AudioError, match="more than the limit"):
        load_audio(tmp_path / "long.wav", max_seconds=2)


def test_truncated_wav_is_an_error_not_a_crash(tmp_path: Path) -> None:
    write_wav(tmp_path / "ok.wav", np.random.default_rng(0).uniform(-0.5, 0.5, 16000).astype(np.float32))
    data = (tmp_path / "ok.wav").read_bytes()
    try:
        audio = decode_audio_bytes(data[:100])
    except AudioError:
        return
    assert len(audio) < 16000  # libsndfile may return the readable prefix; never garbage length


def test_pcm_decoding_and_hostile_frames() -> None:
    s16 = np.array([0, 16384, -32768], dtype="<i2").tobytes()
    assert np.allclose(pcm_bytes_to_float(s16, "pcm_s16le"), [0, 0.5, -1.0])
    with pytest.raises(AudioError, match="multiple of 2"):
        pcm_bytes_to_float(b"\x00\x01\x02", "pcm_s16le")
    with pytest.raises(AudioError, match="multiple of 4"):
        pcm_bytes_to_float(b"\x00" * 6, "pcm_f32le")
    with pytest.raises(AudioError, match="NaN"):
        pcm_bytes_to_float(np.array([0.1, np.nan], dtype="<f4").tobytes(), "pcm_f32le")
    with pytest.raises(AudioError, match="unknown encoding"):
        pcm_bytes_to_float(b"", "mulaw")


def test_sniff_by_content_not_name(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.mp3", np.zeros(1600, dtype=np.float32))
    data = (tmp_path / "a.mp3").read_bytes()
    assert sniff_audio_format(data) == "wav"
    assert sniff_audio_format(b"ID3\x03") is None
    assert len(decode_audio_bytes(data)) == 1600


@pytest.mark.parametrize("rate", [0, -8000, 10**9, 3999])
def test_absurd_sample_rates(rate: int) -> None:
    with pytest.raises(AudioError, match="sample rate"):
        resample(np.zeros(100, dtype=np.float32), rate)


def test_resample_identity_and_rate() -> None:
    x = np.random.default_rng(1).standard_normal(8000).astype(np.float32)
    assert resample(x, 16000) is not None and np.array_equal(resample(x, 16000), x)
    assert abs(len(resample(x, 8000)) - 16000) <= 2
