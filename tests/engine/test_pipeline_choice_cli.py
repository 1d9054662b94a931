"""`voiceflow diarize --pipeline ...`: the bundled segmentation network end to end, and bad settings refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from voiceflow.config import ConfigError, parse_engine_config
from voiceflow.rttm import read_rttm
from voiceflow_cli.main import main

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize("streaming", [False, True])
def test_bundled_segmentation_network_diarizes_a_meeting(tmp_path: Path, streaming: bool) -> None:
    args = ["diarize", str(DATA / "dev00.wav"), "--pipeline", "segmentation", "--out-dir", str(tmp_path), "--quiet"]
    assert main([*args, "--streaming"] if streaming else args) == 0
    segments = read_rttm(tmp_path / "dev00.rttm")["dev00"]
    assert segments and 1 <= len({s.speaker for s in segments}) <= 6
    assert all(0.0 <= s.start < s.end <= 30.01 for s in segments)


def test_overlap_detector_pipeline_runs_from_the_cli(tmp_path: Path) -> None:
    args = ["diarize", str(DATA / "dev00.wav"), "--pipeline", "embedding-overlap", "--out-dir", str(tmp_path)]
    assert main([*args, "--quiet"]) == 0
    assert read_rttm(tmp_path / "dev00.rttm")["dev00"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "not a loadable ONNX model"),
        (b"this is not a model\n" * 20, "not a loadable ONNX model"),
        (None, "not found"),
    ],
)
def test_bad_segmentation_model_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, expected: str
) -> None:
    model = tmp_path / "seg.onnx"
    if content is not None:
        model.write_bytes(content)
    code = main(["diarize", str(DATA / "dev00.wav"), "--pipeline", "segmentation", "--segmentation-model", str(model)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]


def test_an_embedding_model_is_refused_as_a_segmentation_model(capsys: pytest.CaptureFixture[str]) -> None:
    ge2e = Path(__file__).resolve().parents[2] / "voiceflow" / "models" / "ge2e.onnx"
    code = main(["diarize", str(DATA / "dev00.wav"), "--pipeline", "segmentation", "--segmentation-model", str(ge2e)])
    assert code == 2
    assert "segmentation" in capsys.readouterr().err


@pytest.mark.parametrize(
    "data",
    [
        {"pipeline": "bogus"},
        {"pipeline": 3},
        {"segmentation": {"streaming": {"latency_seconds": -1}}},
        {"segmentation": {"offline": {"step_seconds": 0}}},
        {"segmentation": {"offline": {"speech": "always"}}},
        {"segmentation": {"offline": {"local": {"max_windows": 0}}}},
        {"segmentation": {"streaming": {"clustering": {"confirm_chunks": 0}}}},
        {"segmentation": {"model": ["a", "b"]}},
        {"segmentation": {"unknown": 1}},
    ],
)
def test_hostile_segmentation_settings_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        parse_engine_config(data)


def test_segmentation_settings_parse() -> None:
    settings = {"streaming": {"latency_seconds": 2.5}, "offline": {"speech": "vad"}}
    config = parse_engine_config({"pipeline": "segmentation", "segmentation": settings})
    assert config.pipeline == "segmentation"
    assert config.segmentation.streaming.latency_seconds == 2.5
    assert config.segmentation.offline.speech == "vad"
