"""The one interface every streaming block has, and the one rule for `final`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

Hop = TypeVar("Hop")


class Block(Generic[Hop]):
    """One stage of a streaming pipeline. The session calls the block on every hop of the stream,
    in stream order, after the blocks before it (each reads what they wrote on the hop record and
    adds its own part), and `close()` once when the stream ends."""

    # Audio behind the decided edge this block still reads: the rolling buffer keeps the most any
    # of the session's blocks needs, and no more.
    context_samples: int = 0

    def __call__(self, hop: Hop) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """End of the stream: settle what was waiting for later audio (nothing, by default)."""

    def mutable_from(self, decided: int) -> int:
        """The first frame whose output this block may still change, `decided` being where the
        session's decisions stand (a block that changes nothing once a hop is run: `decided`)."""
        return decided


@dataclass
class FrameHop:
    """One decision hop of the pipelines on the VAD frame grid: frames [start, end) of the stream."""

    start: int
    end: int
    # The speech block's refined speech over the hop's frames.
    speech: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    # What the VAD's hysteresis alone heard over the hop's frames (a pause inside `speech` is
    # where it is False).
    heard: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    # The embedding block's embedding of the window ending at the hop (None: no speech in the hop,
    # or too little in the window to embed reliably).
    embedding: np.ndarray | None = None


def settled(end: float, edge: float, gap: float = 0.0) -> bool:
    """The one rule for `final`, every pipeline: a segment is final once it ends before the stream's
    edge (the time from which a speaker may still change) by more than the merge gap, so no later
    audio can change, extend or join it. A segment that reaches the edge is a draft."""
    return end + gap < edge - 1e-9
