"""Give freed heap back to the operating system once the pod has no live audio.

After a burst of streams, glibc keeps the freed buffers (audio, embeddings, protocol frames) in
its arenas, so an idle pod stays at its peak size. `malloc_trim(0)` returns them; it is only
called when no stream is receiving audio, at most once per `min_interval` seconds, and is a no-op
where glibc is not the allocator (musl, macOS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable


def _glibc_trim() -> Callable[[], object] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class HeapTrimmer:
    def __init__(self, min_interval: float = 1.0, trim: Callable[[], object] | None = None) -> None:
        self._trim = trim if trim is not None else _glibc_trim()
        self.min_interval = min_interval
        self._last = float("-inf")

    def quiet(self, now: float | None = None) -> bool:
        """Call when the last stream with audio has ended; True when the heap was trimmed."""
        now = time.monotonic() if now is None else now
        if self._trim is None or now - self._last < self.min_interval:
            return False
        self._last = now
        self._trim()
        return True
