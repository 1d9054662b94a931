"""`voiceflow diarize`'s outputs as a user sees them: a silent file says so in one line, --out-dir
says what it wrote, --plot spans the whole file and draws --reference under the hypothesis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from voiceflow.audio import load_audio
from voiceflow.rttm import read_rttm
from voiceflow.segments import Segment
from voiceflow_cli.main import main
from voiceflow_cli.plot import reference_colours, timeline_figure

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_RTTM = ROOT / "voiceflow" / "samples" / "conversation.rttm"
DEV00 = ROOT / "tests" / "data" / "dev00.wav"


def test_silent_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    silent = tmp_path / "quiet.wav"
    sf.write(silent, np.zeros(16000 * 3, dtype=np.float32), 16000)
    assert main(["diarize", str(silent)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""  # an empty RTTM
    assert captured.err.splitlines() == [f"voiceflow diarize: {silent}: no speech found"]


def test_out_dir_says_what_it_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["diarize", "--sample", "--quiet", "--out-dir", str(out), "--json", "--plot"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = ["conversation.rttm", "conversation.json", "conversation.png"]
    assert lines == [f"wrote {out / name}" for name in names]
    assert all((out / name).stat().st_size > 0 for name in names)


def test_figure_spans_the_file_and_puts_the_reference_under() -> None:
    hyp = [Segment(3.0, 5.0, "SPEAKER_00"), Segment(6.0, 9.0, "SPEAKER_01")]
    ref = [Segment(2.9, 5.2, "alice"), Segment(6.1, 8.8, "bob"), Segment(8.8, 9.1, "carol")]
    fig = timeline_figure(hyp, ref, "t", duration=30.0)
    top, bottom = fig.axes
    assert top.get_xlim() == (0.0, 30.0) and bottom.get_xlim() == (0.0, 30.0)  # the whole file, not the speech
    assert (top.get_ylabel(), bottom.get_ylabel()) == ("hypothesis", "reference")
    assert bottom.get_position().y1 <= top.get_position().y0  # under it
    assert [t.get_text() for t in bottom.get_yticklabels()] == ["alice", "bob", "carol"]
    assert timeline_figure(hyp).axes[0].get_xlim() == (0.0, 9.0)  # no duration: up to the last turn


def test_reference_speakers_wear_their_matching_hypothesis_colour() -> None:
    hyp = [Segment(0.0, 4.0, "SPEAKER_00"), Segment(4.0, 9.0, "SPEAKER_01")]
    ref = [Segment(0.0, 4.2, "zed"), Segment(4.2, 9.0, "amy"), Segment(9.0, 9.5, "bob")]
    assert reference_colours(hyp, ref) == {"zed": 0, "amy": 1, "bob": 2}  # bob matched nobody: a colour of its own


def test_plot_gets_the_duration_and_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[dict[str, Any]] = []

    def spy(path: Path, hypothesis: list[Segment], reference: Any = None, **kwargs: Any) -> None:
        calls.append({"path": path, "hypothesis": hypothesis, "reference": reference, **kwargs})
        Path(path).write_bytes(b"png")

    monkeypatch.setattr("voiceflow_cli.plot.plot_timeline", spy)
    padded = tmp_path / "dev00.wav"  # 30 s of meeting and 10 s of silence after it
    sf.write(padded, np.concatenate([load_audio(DEV00), np.zeros(160000, np.float32)]), 16000)
    rttm = ROOT / "tests" / "data" / "dev00.rttm"
    assert main(["diarize", str(padded), "--out-dir", str(tmp_path / "o"), "--plot", "--reference", str(rttm)]) == 0
    (call,) = calls
    assert call["duration"] == pytest.approx(40.0, abs=0.01)
    assert call["reference"] == read_rttm(rttm)["dev00"]
    # the sample's RTTM has one uri: it is the reference of the one file diarized, whatever its name
    args = ["diarize", "--sample", "--out-dir", str(tmp_path / "s"), "--plot", "--reference", str(SAMPLE_RTTM)]
    assert main(args) == 0
    assert calls[-1]["reference"] == read_rttm(SAMPLE_RTTM)["conversation"]
    capsys.readouterr()


def test_reference_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rttm = str(SAMPLE_RTTM)
    assert main(["diarize", "--sample", "--reference", rttm]) == 2
    assert "voiceflow diarize: error: --reference is drawn by --plot" in capsys.readouterr().err
    bad = tmp_path / "bad.rttm"
    bad.write_text("SPEAKER x 1 oops\n")
    assert main(["diarize", "--sample", "--out-dir", str(tmp_path), "--plot", "--reference", str(bad)]) == 2
    assert capsys.readouterr().err.startswith("voiceflow diarize: error: --reference: ")
    args = ["diarize", "--sample", str(DEV00), "--out-dir", str(tmp_path), "--plot", "--reference", rttm]
    assert main(args) == 1  # two files: dev00 has no reference in the sample's RTTM
    err = capsys.readouterr().err
    assert "--reference has no uri 'dev00'" in err and (tmp_path / "conversation.png").is_file()


def test_simulate_says_what_it_wrote(tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    librispeech = shared_data / "librispeech-train-clean-100"
    assert main(["simulate", "--librispeech", str(librispeech), "--out-dir", str(tmp_path), "--count", "1"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    files = [tmp_path / f"sim00{suffix}" for suffix in (".wav", ".rttm", ".uem")]
    assert line.startswith(f"wrote {files[0]}, {files[1]}, {files[2]}: ")
    assert all(f.stat().st_size > 0 for f in files)
