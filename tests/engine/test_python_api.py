"""The Python API as a user meets it: `voiceflow.diarize` gives what `voiceflow diarize` gives, finds
the sample's three speakers, and `voiceflow.StreamingDiarizer` is the streaming counterpart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soxr

import voiceflow
from voiceflow.audio import load_audio
from voiceflow.rttm import parse_rttm, read_rttm
from voiceflow.scoring import score_der
from voiceflow.segments import Segment
from voiceflow_cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "voiceflow" / "samples" / "conversation.wav"
REFERENCE = read_rttm(ROOT / "voiceflow" / "samples" / "conversation.rttm")


def der(segments: list[Segment]) -> float:
    return score_der(REFERENCE, {"conversation": segments}).der


@pytest.fixture(scope="module")
def result() -> voiceflow.DiarizationResult:
    return voiceflow.diarize(SAMPLE)


def test_import_is_cheap() -> None:
    heavy = "('numpy', 'onnxruntime', 'voiceflow.api')"
    code = f"import sys, voiceflow; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert callable(voiceflow.diarize)  # imported on first use


def test_sample_three_speakers_low_der(result: voiceflow.DiarizationResult) -> None:
    assert result.speakers == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02"]
    assert der(result.segments) < 0.25  # the sample's DER gate (README); measured ~19 %
    assert result.uri == "conversation" and result.duration == pytest.approx(30.0)
    assert all(type(s.start) is float and type(s.end) is float and s.final is True for s in result.segments)


def test_same_as_the_cli_segment_for_segment(
    result: voiceflow.DiarizationResult, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["diarize", "--sample", "--quiet"]) == 0
    cli_rttm = capsys.readouterr().out
    assert result.to_rttm() == cli_rttm
    millis = lambda segs: [(round(s.start, 3), round(s.end, 3), s.speaker) for s in segs]  # noqa: E731  RTTM's precision
    assert millis(parse_rttm(cli_rttm)["conversation"]) == millis(result.segments)
    assert main(["diarize", "--sample", "--quiet", "--json", "--out-dir", str(tmp_path)]) == 0
    assert json.loads(result.to_json()) == json.loads((tmp_path / "conversation.json").read_text())


def test_annotation(result: voiceflow.DiarizationResult) -> None:
    from pyannote.core import Annotation

    annotation = result.to_annotation()
    assert isinstance(annotation, Annotation) and annotation.uri == "conversation"
    assert sorted(annotation.labels()) == result.speakers
    assert annotation.get_timeline().duration() == pytest.approx(sum(s.duration for s in result.segments))


def test_arrays_any_rate_and_speaker_bounds(result: voiceflow.DiarizationResult) -> None:
    audio = load_audio(SAMPLE)
    assert voiceflow.diarize(audio, sample_rate=16000).segments == result.segments
    stereo_48k = np.stack([soxr.resample(audio, 16000, 48000)] * 2).astype(np.float32)  # (channel, time)
    at_48k = voiceflow.diarize(stereo_48k, sample_rate=48000)
    assert len(at_48k.speakers) == 3 and der(at_48k.segments) < 0.25
    assert len(voiceflow.diarize(audio, sample_rate=16000, num_speakers=2).speakers) == 2
    with pytest.raises(ValueError, match="sample_rate"):
        voiceflow.diarize(audio)
    with pytest.raises(ValueError, match="file's own rate"):
        voiceflow.diarize(SAMPLE, sample_rate=8000)
    with pytest.raises(ValueError):
        voiceflow.diarize(audio, sample_rate=16000, min_speakers=3, max_speakers=2)


def test_pipeline_and_model_choice(result: voiceflow.DiarizationResult, capsys: pytest.CaptureFixture[str]) -> None:
    from voiceflow.embedding import EmbeddingModel, default_model_path

    loaded = EmbeddingModel.load()
    assert voiceflow.diarize(SAMPLE, model=loaded).segments == result.segments
    assert voiceflow.diarize(SAMPLE, model=default_model_path()).segments == result.segments
    overlap = voiceflow.diarize(SAMPLE, pipeline="embedding-overlap")
    assert main(["diarize", "--sample", "--quiet", "--pipeline", "embedding-overlap"]) == 0
    assert overlap.to_rttm() == capsys.readouterr().out
    with pytest.raises(ValueError, match="pipeline must be one of"):
        voiceflow.diarize(SAMPLE, pipeline="nope")


def test_streaming_counterpart_equals_the_cli_streaming(capsys: pytest.CaptureFixture[str]) -> None:
    audio = load_audio(SAMPLE)
    stream = voiceflow.StreamingDiarizer()
    rng = np.random.default_rng(5)
    live, i = [], 0
    while i < audio.size:
        n = int(rng.integers(100, 12000))
        live += stream.feed(audio[i : i + n])
        i += n
    live += stream.flush()
    final = stream.finish()
    assert main(["diarize", "--sample", "--streaming"]) == 0
    assert final.to_rttm().replace("SPEAKER stream ", "SPEAKER conversation ") == capsys.readouterr().out
    assert sorted((s.start, s.end, s.speaker) for s in live if s.final) == [
        (s.start, s.end, s.speaker) for s in final.segments
    ]
    assert len(final.speakers) == 3 and final.duration == pytest.approx(30.0)


def test_streaming_at_48k() -> None:
    audio = soxr.resample(load_audio(SAMPLE), 16000, 48000).astype(np.float32)
    stream = voiceflow.StreamingDiarizer(sample_rate=48000)
    for i in range(0, audio.size, 4800):
        stream.feed(audio[i : i + 4800])
    final = stream.finish()
    assert len(final.speakers) == 3 and der(final.segments) < 0.35  # streaming on the sample: ~27 %
    assert final.duration == pytest.approx(30.0, abs=0.01)
