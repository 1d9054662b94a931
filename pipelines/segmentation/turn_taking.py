"""Turn-taking measured on real meetings, for the chunk simulator (issue 24).

Landini et al. (2022) draw pauses and overlaps from histograms measured on the target domain;
this reads them off reference RTTMs (the AMI *training* excerpts: never the dev files, which
score the engine) and returns a `TurnTakingConfig` of `Empirical` distributions that
`sample_chunk_turns` draws from when `data.turn_taking: ami` says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import reduce
from pathlib import Path

from pipelines.simulation import Empirical, LogNormal, TurnTakingConfig, TurnTakingStatistics, turn_taking_statistics
from voiceflow.rttm import read_rttm
from voiceflow.segments import Segment

Duration = LogNormal | Empirical

BACKCHANNEL_SECONDS = 1.0  # a backchannel: another speaker's segment under 1 s inside a turn


def pooled_statistics(
    references: Iterable[list[Segment]], backchannel_seconds: float = BACKCHANNEL_SECONDS
) -> TurnTakingStatistics:
    """Every recording measured on its own (no gap spans two recordings), then pooled."""
    empty = TurnTakingStatistics((), (), ())
    return reduce(
        lambda a, b: a + b,
        (turn_taking_statistics(ref, backchannel_seconds) for ref in references),
        empty,
    )


STAND_INS = TurnTakingConfig()  # the simulator's log-normal stand-ins


def turn_taking_from(stats: TurnTakingStatistics, base: TurnTakingConfig = STAND_INS) -> TurnTakingConfig:
    """The simulator's turn-taking drawn from what `stats` measured: every distribution with at
    least one value becomes `Empirical`, the probabilities are the measured rates; a distribution
    with no measured value keeps `base`'s (a reference without overlap says nothing of its length)."""

    def measured(values: tuple[float, ...], fallback: Duration) -> Duration:
        return Empirical(tuple(values)) if values else fallback

    return TurnTakingConfig(
        within_pause=measured(stats.within_pauses, base.within_pause),
        between_pause=measured(stats.between_pauses, base.between_pause),
        overlap=measured(stats.overlaps, base.overlap),
        p_overlap=stats.p_overlap,
        p_same_speaker=stats.p_same_speaker,
        segment=measured(stats.segments, base.segment),
        min_segment_seconds=base.min_segment_seconds,
        p_backchannel=stats.p_backchannel,
        backchannel=measured(stats.backchannels, base.backchannel),
    )


def rttm_turn_taking(path: Path) -> tuple[TurnTakingConfig, TurnTakingStatistics]:
    """The turn-taking of every recording in an RTTM file, and the statistics it came from."""
    stats = pooled_statistics(read_rttm(path).values())
    return turn_taking_from(stats), stats
