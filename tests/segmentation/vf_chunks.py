"""What the chunk-generator tests (pipelines.simulation) share: the label frame, a conversation
measured by hand, and generated turns read back as Segments."""

from __future__ import annotations

from pipelines.simulation import Interval
from voiceflow import SAMPLE_RATE
from voiceflow.segments import Segment

FRAME = 320  # 20 ms: a chunk's label frame, in samples

# Every pause, overlap and backchannel of this layout is known exactly.
REFERENCE = [
    Segment(0.0, 2.0, "A"),
    Segment(2.5, 4.0, "A"),  # within-speaker pause 0.5
    Segment(3.5, 5.0, "B"),  # overlap 0.5 with A
    Segment(4.0, 4.5, "C"),  # 0.5 s wholly inside B: a backchannel, else an overlap capped at its own length
    Segment(6.0, 7.0, "A"),  # between-speaker pause 1.0 after B (the frontier)
]


def as_segments(turns: list[Interval]) -> list[Segment]:
    """Generated turns (sample positions, local speaker numbers) as Segments in seconds."""
    return [Segment(t.start / SAMPLE_RATE, t.end / SAMPLE_RATE, str(t.speaker)) for t in turns]
