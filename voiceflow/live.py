"""What a live stream has told its client, so the protocol's promise holds for every chunking.

docs/protocol.md: a segment is identified by (speaker, start); a later report of the same pair
replaces the earlier one, and every segment is sent once more when it becomes final. A stream
session computes its current view of the segments that may still change; the ledger turns views
into updates (only what is new or different from what was last sent), and at the end of the
stream the session reports its whole result through the same ledger, so whatever the end
finalized is sent live too: the live `final: true` set is then exactly the stream's result.
"""

from __future__ import annotations

from collections.abc import Iterable

from voiceflow.segments import Segment

Key = tuple[str, float]


def segment_key(segment: Segment) -> Key:
    """A segment's identity across updates: (speaker, start)."""
    return (str(segment.speaker), float(segment.start))


def plain(segment: Segment) -> Segment:
    """The segment with builtin float/bool fields (views are computed with numpy scalars)."""
    return Segment(float(segment.start), float(segment.end), str(segment.speaker), bool(segment.final))


class LiveLedger:
    """The last version of every segment sent on one stream, keyed by (speaker, start).

    Holds one entry per segment of the stream (as the stream's final result does), so a view may
    repeat segments already sent without them going out twice.
    """

    def __init__(self) -> None:
        self._sent: dict[Key, Segment] = {}

    def report(self, view: Iterable[Segment]) -> list[Segment]:
        """The segments of `view` that differ from what was last sent under their key (new ones
        included), now recorded as sent; sorted by time."""
        updates: list[Segment] = []
        for seg in map(plain, view):
            key = segment_key(seg)
            if self._sent.get(key) != seg:
                self._sent[key] = seg
                updates.append(seg)
        return sorted(updates, key=lambda s: (s.start, s.end, s.speaker))


def latest(reports: Iterable[Iterable[Segment]]) -> list[Segment]:
    """Several reports in order as one: a later report's version of a segment replaces an earlier one."""
    newest: dict[Key, Segment] = {}
    for report in reports:
        for seg in report:
            newest[segment_key(seg)] = plain(seg)
    return sorted(newest.values(), key=lambda s: (s.start, s.end, s.speaker))
