"""`voiceflow diarize` / `evaluate`: outputs, and one clear line per bad input with the rest still done."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voiceflow.audio import write_wav
from voiceflow.rttm import read_rttm
from voiceflow_cli.main import main

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def bad_inputs(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + b"\xff" * 40)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 50)
    silent = tmp_path / "silent.flac"
    write_wav(tmp_path / "tmp.wav", np.zeros(8000, dtype=np.float32))
    import soundfile as sf

    sf.write(silent, np.zeros(8000, dtype=np.float32), 8000, format="FLAC")
    return {"empty": empty, "corrupt": corrupt, "text": text, "missing": tmp_path / "missing.wav", "silent": silent}


def test_one_file_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diarize", "--sample", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SPEAKER conversation 1 ")
    assert len({line.split()[7] for line in out.splitlines()}) >= 2


def test_bad_files_each_get_one_line_and_the_good_one_is_written(
    tmp_path: Path, bad_inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    files = [str(p) for p in bad_inputs.values()] + [str(DATA / "dev00.wav")]
    code = main(["diarize", *files, "--out-dir", str(out_dir), "--json", "--plot", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    for name in ("empty", "corrupt", "notes", "missing"):
        lines = [line for line in err.splitlines() if name in line]
        assert len(lines) == 1, err
    assert "4 of 6 files failed" in err
    assert read_rttm(out_dir / "dev00.rttm")["dev00"]
    assert (out_dir / "dev00.json").is_file() and (out_dir / "dev00.png").stat().st_size > 1000
    assert (out_dir / "silent.rttm").read_text() == ""  # valid audio with no speech: an empty RTTM
    assert not list(out_dir.glob("*.tmp"))


def test_argument_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["diarize"]) == 2
    assert main(["diarize", "a.wav", "b.wav"]) == 2
    with pytest.raises(SystemExit):
        main(["diarize", "--sample", "--num-speakers", "0"])
    with pytest.raises(SystemExit):
        main(["diarize", "--sample", "--num-speakers", "two"])
    bad_config = tmp_path / "c.yaml"
    bad_config.write_text("offline: {window_seconds: -3}\n")
    assert main(["diarize", "--sample", "--config", str(bad_config)]) == 2
    bad_model = tmp_path / "m.onnx"
    bad_model.write_bytes(b"\x00" * 100)
    assert main(["diarize", "--sample", "--model", str(bad_model)]) == 2
    err = capsys.readouterr().err
    assert "window_seconds" in err and "not a loadable ONNX model" in err


def test_streaming_mode_and_speaker_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diarize", str(DATA / "dev00.wav"), "--streaming"]) == 0
    assert "SPEAKER dev00" in capsys.readouterr().out
    assert main(["diarize", str(DATA / "dev00.wav"), "--num-speakers", "3"]) == 0
    assert len({line.split()[7] for line in capsys.readouterr().out.splitlines()}) == 3


def test_evaluate_scores_rttms_uem_aware(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hyp = tmp_path / "hyp"
    hyp.mkdir()
    (hyp / "dev00.rttm").write_text((DATA / "dev00.rttm").read_text())
    assert main(["evaluate", "--data", str(DATA), "--hyp", str(hyp), "--json-out", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "dev00" in out and " 0.00%" in out and "TOTAL" in out
    assert main(["evaluate", "--data", str(tmp_path / "nope")]) == 2
    (hyp / "dev00.rttm").write_text("SPEAKER dev00 1 x y <NA> <NA> A <NA> <NA>\n")
    assert main(["evaluate", "--data", str(DATA), "--hyp", str(hyp)]) == 2
    assert "dev00.rttm:1" in capsys.readouterr().err


def test_console_script_help_is_fast_and_lists_commands() -> None:
    result = subprocess.run([sys.executable, "-m", "voiceflow_cli.main", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("diarize", "evaluate", "simulate"):
        assert command in result.stdout


def test_huge_file_is_refused_from_its_header_without_decoding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An 18-hour WAV (a sparse file: no disk used) fails fast with one line, before any decoding."""
    path = tmp_path / "huge.wav"
    write_wav(path, np.zeros(1600, dtype=np.float32))
    data = bytearray(path.read_bytes())
    data_pos = data.index(b"data")
    data[data_pos + 4 : data_pos + 8] = (0x7FFFFFF0).to_bytes(4, "little")
    data[4:8] = (0x7FFFFFF0 + 36).to_bytes(4, "little")
    with open(path, "wb") as handle:
        handle.write(bytes(data[: data_pos + 8]))
        handle.truncate(data_pos + 8 + 0x7FFFFFF0)
    assert main(["diarize", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "huge.wav" in err[0]
