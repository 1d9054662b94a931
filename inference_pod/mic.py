"""The default input device as a live audio source for `voiceflow stream --mic` (like
`diart.stream microphone`), through the optional `sounddevice` package (`pip install 'voiceflow[mic]'`).

The device is opened at its own rate, mono; the stream's `start` message announces that rate and
the server resamples (docs/protocol.md), so no audio is resampled twice. PortAudio calls back on
its own thread; blocks cross into the event loop through `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

INSTALL_HINT = "pip install 'voiceflow[mic]' (the sounddevice package; on Linux also PortAudio: libportaudio2)"


class MicrophoneError(RuntimeError):
    """No way to capture: the library, PortAudio or an input device is missing."""


def load_sounddevice() -> Any:
    try:
        import sounddevice
    except ImportError as exc:
        raise MicrophoneError(f"--mic needs the sounddevice package: {INSTALL_HINT}") from exc
    except OSError as exc:  # sounddevice is there, the PortAudio library it loads is not
        raise MicrophoneError(f"--mic cannot load PortAudio ({exc}): {INSTALL_HINT}") from exc
    return sounddevice


class Microphone:
    """Blocks of mono float32 samples at `sample_rate` from an input device, until `stop()`."""

    def __init__(self, device: str | int | None = None, block_seconds: float = 0.1, sd: Any = None) -> None:
        self._sd = sd or load_sounddevice()
        try:
            info = self._sd.query_devices(device, "input")
        except (ValueError, self._sd.PortAudioError) as exc:
            raise MicrophoneError(f"no audio input device{'' if device is None else f' {device!r}'}: {exc}") from exc
        if int(info.get("max_input_channels", 0)) < 1:
            raise MicrophoneError(f"audio device {info.get('name', device)!r} has no input channels")
        self.name = str(info.get("name", "default"))
        self.device = device
        self.sample_rate = round(float(info["default_samplerate"]))
        self.block = max(1, round(block_seconds * self.sample_rate))
        self._queue: asyncio.Queue[np.ndarray | None] = asyncio.Queue()
        self._stream: Any = None
        self.overflows = 0  # blocks PortAudio dropped because we read too late

    def stop(self) -> None:
        """End the source: the blocks captured so far are still delivered, then iteration ends."""
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None
        self._queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[np.ndarray]:
        loop = asyncio.get_running_loop()

        def on_block(indata: np.ndarray, frames: int, time: Any, status: Any) -> None:
            if status:
                self.overflows += 1
            loop.call_soon_threadsafe(self._queue.put_nowait, np.array(indata[:, 0], dtype=np.float32))

        try:
            self._stream = self._sd.InputStream(
                samplerate=self.sample_rate,
                blocksize=self.block,
                device=self.device,
                channels=1,
                dtype="float32",
                callback=on_block,
            )
            self._stream.start()
        except (ValueError, self._sd.PortAudioError) as exc:
            raise MicrophoneError(f"cannot open audio input {self.name!r}: {exc}") from exc
        try:
            while (block := await self._queue.get()) is not None:
                yield block
        finally:
            if self._stream is not None:
                self.stop()


def open_microphone(device: str | int | None = None) -> Microphone:
    """The capture source `voiceflow stream --mic` uses (tests put a fake in its place)."""
    return Microphone(device)
