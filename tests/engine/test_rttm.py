from pathlib import Path

import pytest

from voiceflow.rttm import RTTMError, parse_rttm, read_rttm, read_uem, segments_to_rttm, write_rttm
from voiceflow.segments import Segment, frames_to_segments, merge_adjacent


def test_round_trip(tmp_path: Path) -> None:
    segs = [Segment(0.5, 1.25, "A"), Segment(1.0, 3.0, "B"), Segment(4.0, 4.5, "A")]
    write_rttm(tmp_path / "x.rttm", segs, "meeting one")
    parsed = read_rttm(tmp_path / "x.rttm")
    assert list(parsed) == ["meeting_one"]
    assert [(s.start, s.end, s.speaker) for s in parsed["meeting_one"]] == [
        (0.5, 1.25, "A"),
        (1.0, 3.0, "B"),
        (4.0, 4.5, "A"),
    ]


def test_zero_length_segments_are_not_written() -> None:
    assert segments_to_rttm([Segment(1.0, 1.0, "A")], "u") == ""


@pytest.mark.parametrize(
    "line",
    [
        "SPEAKER u 1 x 1.0 <NA> <NA> A <NA> <NA>",
        "SPEAKER u 1 1.0",
        "SPEAKER u 1 nan 1 <NA> <NA> A",
        "SPEAKER u 1 -1 1 <NA> <NA> A",
    ],
)
def test_malformed_lines_name_the_line(line: str) -> None:
    with pytest.raises(RTTMError, match=":1:"):
        parse_rttm(line)


def test_other_record_types_and_comments_are_ignored() -> None:
    text = "# comment\nSPKR-INFO u 1 <NA> <NA> <NA> unknown A <NA> <NA>\nSPEAKER u 1 0 1 <NA> <NA> A <NA> <NA>\n"
    assert len(parse_rttm(text)["u"]) == 1


def test_uem(tmp_path: Path) -> None:
    (tmp_path / "a.uem").write_text("u NA 0.000 30.000\n")
    assert read_uem(tmp_path / "a.uem") == {"u": [(0.0, 30.0)]}


def test_frames_to_segments_and_merge() -> None:
    segs = frames_to_segments([-1, 0, 0, 1, 1, -1, 0], 0.5)
    assert [(s.start, s.end, s.speaker) for s in segs] == [
        (0.5, 1.5, "SPEAKER_00"),
        (1.5, 2.5, "SPEAKER_01"),
        (3.0, 3.5, "SPEAKER_00"),
    ]
    merged = merge_adjacent([Segment(0, 1, "A"), Segment(1.1, 2, "A"), Segment(2, 3, "B")], max_gap=0.2)
    assert [(s.start, s.end, s.speaker) for s in merged] == [(0, 2, "A"), (2, 3, "B")]
