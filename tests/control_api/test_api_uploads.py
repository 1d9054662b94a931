"""Upload checks that need no server: magic bytes, names, references, staging."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from api_support import soundfile_validate, wav_bytes

from control_api.uploads import (
    UploadRejected,
    clean_filename,
    new_staging_dir,
    resolve_reference,
    sniff_audio_format,
    stage_upload,
)


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "wav"),
        (b"RF64\xff\xff\xff\xffWAVEds64", "wav"),
        (b"fLaC\x00\x00\x00\x22\x10\x00\x10\x00", "flac"),
        (b"OggS\x00\x02\x00\x00\x00\x00\x00\x00", "ogg"),
        (b"RIFF\x24\x00\x00\x00AVI LIST", None),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00", None),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3", None),
        (b"", None),
    ],
)
def test_sniff_by_content(head: bytes, fmt: str | None) -> None:
    assert sniff_audio_format(head) == fmt


def test_clean_filename_keeps_only_a_safe_basename() -> None:
    assert clean_filename("../../etc/passwd", "x") == "passwd"
    assert clean_filename("C:\\calls\\day 1.wav", "x") == "day_1.wav"
    assert clean_filename("", "file3") == "file3"
    assert clean_filename("...", "file3") == "file3"


def test_references_cannot_escape_the_root(tmp_path: Path) -> None:
    root = tmp_path / "refs"
    root.mkdir()
    (root / "a.wav").write_bytes(b"x")
    (tmp_path / "secret.wav").write_bytes(b"x")
    assert resolve_reference("a.wav", str(root)) == root / "a.wav"
    assert resolve_reference("file://a.wav", str(root)) == root / "a.wav"
    for bad in ("../secret.wav", str(tmp_path / "secret.wav"), "missing.wav"):
        with pytest.raises(UploadRejected) as info:
            resolve_reference(bad, str(root))
        assert info.value.status_code == 422
    with pytest.raises(UploadRejected):
        resolve_reference("a.wav", "")


def stage(data: bytes, tmp_path: Path, **limits: float) -> Path:
    staging = new_staging_dir(tmp_path)
    kwargs = {"max_bytes": 10_000_000, "max_seconds": 60.0, **limits}
    staged = stage_upload(
        io.BytesIO(data),
        "x.wav",
        staging,
        0,
        max_bytes=int(kwargs["max_bytes"]),
        max_seconds=kwargs["max_seconds"],
        validate=soundfile_validate,
    )
    return staged.path


def test_a_real_flac_named_wav_is_accepted_as_flac(tmp_path: Path) -> None:
    assert stage(wav_bytes(0.5, fmt="FLAC"), tmp_path).suffix == ".flac"


@pytest.mark.parametrize(
    ("data", "limits", "status"),
    [
        (b"hello, this is plain text pretending to be a wav", {}, 415),
        (b"RIFF\x24\x00\x00\x00WAVE" + b"\x00" * 200, {}, 422),
        (wav_bytes(2.0), {"max_bytes": 10_000}, 413),
        (wav_bytes(2.0), {"max_seconds": 1.0}, 413),
    ],
    ids=["text-as-wav", "broken-wav", "too-many-bytes", "too-long"],
)
def test_rejections(data: bytes, limits: dict[str, float], status: int, tmp_path: Path) -> None:
    with pytest.raises(UploadRejected) as info:
        stage(data, tmp_path, **limits)
    assert info.value.status_code == status
    assert "x.wav" in info.value.message
