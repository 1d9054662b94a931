"""`voiceflow stream --mic`: a fake `sounddevice` stands in for PortAudio and plays real speech
through the capture callback on its own thread, then presses Ctrl-C (SIGINT). The pod's final
must be what `voiceflow diarize --streaming` gives for that audio; missing pieces are one line."""

from __future__ import annotations

import os
import signal
import sys
import threading
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pod_support import RunningPod

from voiceflow.audio import load_audio
from voiceflow.rttm import read_rttm
from voiceflow_cli.main import main

pytestmark = pytest.mark.timeout(240)

SAMPLE = Path(__file__).resolve().parents[2] / "voiceflow" / "samples" / "conversation.wav"


class PortAudioError(Exception):
    pass


def fake_sounddevice(audio: np.ndarray | None, rate: int = 16000, devices: int = 1) -> types.ModuleType:
    """A `sounddevice` with `devices` input devices whose capture plays `audio`, then Ctrl-C."""
    sd = types.ModuleType("sounddevice")
    opened: dict[str, Any] = {}

    def query_devices(device: Any = None, kind: str | None = None) -> dict[str, Any]:
        if devices == 0:
            raise PortAudioError("Error querying device -1")
        return {"name": "fake mic", "max_input_channels": 1, "default_samplerate": float(rate)}

    class InputStream:
        def __init__(self, samplerate: int, blocksize: int, device: Any, channels: int, dtype: str, callback: Any):
            opened.update(samplerate=samplerate, blocksize=blocksize, channels=channels, dtype=dtype)
            self.callback, self.blocksize = callback, blocksize
            self.thread = threading.Thread(target=self.play, daemon=True)

        def play(self) -> None:
            assert audio is not None
            for i in range(0, audio.size, self.blocksize):
                block = audio[i : i + self.blocksize].reshape(-1, 1)  # PortAudio's (frames, channels)
                self.callback(block, len(block), None, None)
            os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C

        def start(self) -> None:
            self.thread.start()

        def stop(self) -> None:
            pass

        def close(self) -> None:
            pass

    sd.query_devices = query_devices  # type: ignore[attr-defined]
    sd.InputStream = InputStream  # type: ignore[attr-defined]
    sd.PortAudioError = PortAudioError  # type: ignore[attr-defined]
    sd.opened = opened  # type: ignore[attr-defined]
    return sd


def test_mic_streams_live_and_ctrl_c_gives_the_final(
    pod: RunningPod, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    audio = load_audio(SAMPLE)[: 16000 * 12]
    sd = fake_sounddevice(audio)
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    rttm = tmp_path / "mic.rttm"
    assert main(["stream", "--mic", "--url", pod.ws, "--rttm", str(rttm)]) == 0
    out, err = capsys.readouterr()
    assert "listening on fake mic at 16000 Hz" in err
    assert sd.opened == {"samplerate": 16000, "blocksize": 1600, "channels": 1, "dtype": "float32"}  # type: ignore[attr-defined]
    assert "final (end)" in out and " draft " in out and " final " in out  # live results, then the final
    # every block arrived, in order: the pod's final is the engine's streaming run on the same audio
    wav = tmp_path / "mic.wav"
    import soundfile as sf

    sf.write(wav, audio, 16000, subtype="FLOAT")
    assert main(["diarize", str(wav), "--streaming"]) == 0
    expected = capsys.readouterr().out
    assert read_rttm(rttm)["microphone"] and Path(rttm).read_text() == expected.replace(
        "SPEAKER mic ", "SPEAKER microphone "
    )


def test_mic_at_the_device_rate_is_announced_and_resampled_by_the_pod(
    pod: RunningPod, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import soxr

    audio = soxr.resample(load_audio(SAMPLE)[: 16000 * 8], 16000, 44100).astype(np.float32)
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(audio, rate=44100))
    assert main(["stream", "--mic", "--url", pod.ws]) == 0
    out, err = capsys.readouterr()
    assert "at 44100 Hz" in err and "final (end)" in out
    final_lines = out.split("final (end):")[1].splitlines()[1:]
    assert max(float(line.split()[1]) for line in final_lines) <= 8.0 + 0.05  # pod clock: 44.1 kHz read right


def test_mic_without_the_library_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import sounddevice -> ImportError
    assert main(["stream", "--mic", "--url", "ws://127.0.0.1:9/ws/stream"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("voiceflow stream: error: --mic needs the sounddevice package: ")
    assert "pip install 'voiceflow[mic]'" in err[0]


def test_mic_without_an_input_device_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(None, devices=0))
    assert main(["stream", "--mic", "--url", "ws://127.0.0.1:9/ws/stream"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["voiceflow stream: error: no audio input device: Error querying device -1"]


def test_file_or_mic(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stream"]) == 2
    assert main(["stream", str(SAMPLE), "--mic"]) == 2
    assert main(["stream", str(SAMPLE), "--seconds", "3"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "voiceflow stream: error: give an audio FILE or --mic (one of them)"
    assert err[2] == "voiceflow stream: error: --device and --seconds go with --mic"
