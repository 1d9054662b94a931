"""The stream's recent audio, addressed by stream sample."""

from __future__ import annotations

import numpy as np


class RollingAudio:
    """Appended audio, of which only what the blocks still read is kept: memory stays bounded
    however long the stream runs. Sample `start` of the stream is the first one held."""

    def __init__(self) -> None:
        self._samples = np.zeros(0, dtype=np.float32)
        self.start = 0

    @property
    def end(self) -> int:
        """One past the last stream sample appended."""
        return self.start + self._samples.size

    @property
    def size(self) -> int:
        return int(self._samples.size)

    def append(self, audio: np.ndarray) -> None:
        self._samples = np.concatenate([self._samples, audio])

    def window(self, start: int, stop: int) -> np.ndarray:
        """Stream samples [start, stop), `start` no earlier than the first one held."""
        if start < self.start:
            raise ValueError(f"stream sample {start} was already dropped (held from {self.start})")
        return self._samples[start - self.start : stop - self.start]

    def forget_before(self, sample: int) -> None:
        """Drop the audio before stream sample `sample` (nothing when it is already gone)."""
        drop = sample - self.start
        if drop > 0:
            self._samples = self._samples[drop:].copy()
            self.start = sample
