"""The smallest dev suite the suite tests render (issue 22): one recording per cell, two- and
three-speaker strata only, 16 s at most, no long recordings."""

from __future__ import annotations

from pipelines.evaluation.suite.manifest import SuiteConfig


def tiny_suite(name: str, channels: tuple[str, ...]) -> SuiteConfig:
    return SuiteConfig(
        name=name,
        per_cell=1,
        speaker_strata=(("2", 2, 2), ("3", 3, 3)),
        channels=channels,
        max_seconds=16.0,
        long_recordings=0,
    )
