"""`voiceflow batch`: a corrupt file in the middle fails alone; a rerun skips finished work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipelines.batch.jobs import discover
from voiceflow.bundle import verify_bundle
from voiceflow.embedding import default_model_path

pytestmark = pytest.mark.slow


def two_voices(seconds: float, seed: int) -> np.ndarray:
    """Alternating harmonic 'voices' at two pitches: enough for VAD and clustering to run on."""
    rng = np.random.default_rng(seed)
    sr, out = 16000, []
    for i in range(int(seconds / 1.5)):
        t = np.arange(int(1.5 * sr)) / sr
        f0 = 120 if i % 2 == 0 else 220
        tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 10))
        out.append(0.1 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)) + 0.002 * rng.standard_normal(len(t)))
    return np.concatenate(out).astype(np.float32)


def test_corrupt_file_in_the_middle_never_stops_the_rest(tmp_path: Path) -> None:
    from voiceflow_cli.main import main

    inputs = tmp_path / "in"
    inputs.mkdir()
    sf.write(inputs / "a_first.wav", two_voices(6, 0), 16000)
    (inputs / "b_corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" + bytes(range(256)) * 8)
    sf.write(inputs / "c_last.flac", two_voices(6, 1), 16000)
    out = tmp_path / "out"

    rc = main(["batch", str(inputs), "--out-dir", str(out), "--workers", "2"])
    assert rc == 1  # something failed: the step reports it, after finishing everything else
    summary = json.loads((out / "summary.json").read_text())
    status = {f["uri"]: f["status"] for f in summary["files"]}
    assert status == {"a_first": "ok", "b_corrupt": "failed", "c_last": "ok"}
    assert summary["failed"] == 1 and summary["ok"] == 2
    # The results say which model bundle made them (the served default, verified before any file).
    default = verify_bundle(default_model_path())
    assert summary["model"]["bundle_digest"] == default.digest and "background" in summary["model"]["parts"]
    # (synthetic tones may hold no speech for the VAD: an empty RTTM is a finished result)
    assert (out / "a_first.rttm").is_file() and (out / "c_last.rttm").is_file()
    assert all(line.startswith("SPEAKER a_first 1 ") for line in (out / "a_first.rttm").read_text().splitlines())
    assert not (out / "b_corrupt.rttm").exists()

    # resumable: finished files are skipped, only the failure is tried again
    rc = main(["batch", str(inputs), "--out-dir", str(out), "--workers", "2"])
    summary = json.loads((out / "summary.json").read_text())
    assert {f["uri"]: f["status"] for f in summary["files"]} == {
        "a_first": "skipped",
        "b_corrupt": "failed",
        "c_last": "skipped",
    }


def test_manifest_inputs_and_name_collisions(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "list.jsonl").write_text('{"path": "sub/a.wav", "num_speakers": 2}\n{"path": "sub/a.flac"}\n\n')
    jobs = discover(tmp_path / "list.jsonl", num_speakers=3)
    assert [(j.uri, j.num_speakers) for j in jobs] == [("sub__a", 2), ("sub__a~1", 3)]
    (tmp_path / "list.txt").write_text("# comment\nsub/b c.wav\n")
    assert [j.uri for j in discover(tmp_path / "list.txt")] == ["sub__b_c"]
    with pytest.raises(FileNotFoundError):
        discover(tmp_path / "missing")


@pytest.mark.parametrize(
    ("flag", "value"), [("--workers", "0"), ("--workers", "-3"), ("--num-speakers", "0"), ("--num-speakers", "x")]
)
def test_batch_refuses_a_non_positive_count(
    flag: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from voiceflow_cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["batch", str(tmp_path), "--out-dir", str(tmp_path / "out"), flag, value])
    assert exit_info.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
