"""The session's own step: audio in any chunking out as whole steps counted from the stream's start."""

from __future__ import annotations

import numpy as np


class Stepper:
    """Holds fed audio until a step of `step_samples` is whole, so what a session does with the
    audio (and so what it reports) does not depend on how a client chunked it."""

    def __init__(self, step_samples: int) -> None:
        if step_samples < 1:
            raise ValueError("step_samples must be >= 1")
        self.step_samples = step_samples
        self._held: list[np.ndarray] = []
        self._held_samples = 0

    @property
    def held_samples(self) -> int:
        return self._held_samples

    def push(self, audio: np.ndarray) -> list[np.ndarray]:
        """The steps `audio` completes, in order (the rest is held for the next push)."""
        if audio.size:
            self._held.append(audio)
            self._held_samples += audio.size
        if self._held_samples < self.step_samples:
            return []
        joined = np.concatenate(self._held) if len(self._held) > 1 else self._held[0]
        whole = (joined.size // self.step_samples) * self.step_samples
        rest = joined[whole:].copy()  # a copy: a view would keep the whole joined array alive
        self._held, self._held_samples = ([rest] if rest.size else []), rest.size
        return [joined[i : i + self.step_samples] for i in range(0, whole, self.step_samples)]

    def drain(self) -> np.ndarray:
        """The partial last step at the end of the stream (possibly empty)."""
        tail = np.concatenate(self._held) if self._held else np.zeros(0, dtype=np.float32)
        self._held, self._held_samples = [], 0
        return tail
