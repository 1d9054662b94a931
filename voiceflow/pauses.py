"""How pauses are counted once the speakers are known: as references count them.

The VAD's rules bridge short pauses whoever speaks. References put silence between two speakers'
turns and count a speaker's own pauses under ~1 s as speech. Both offline and live pipelines apply
these rules to their frame labels (voiceflow.segments.silence_between_speakers and
bridge_own_pauses; live, the own pause is the session's merge gap). Chosen on the dev suite by
cross-validation offline and gated live (docs/evaluation.md, "Silence between speakers" and "A
speaker's own pauses").
"""

from __future__ import annotations

from dataclasses import dataclass

from voiceflow.validation import require_seconds


@dataclass(frozen=True)
class PauseRules:
    # Where the speaker changes within this many seconds of a pause the VAD heard (speech on both
    # sides), the change moves into the pause and the pause is silence again. 0 = never.
    speaker_change_reach_seconds: float = 0.5
    # A silence of at most this many seconds between two turns of one speaker is that speaker's
    # speech (a mask gap of 0.6 s is a heard pause of ~1 s). Live, a segment is final once it ends
    # this long before the first instant whose speaker may still change. 0 = never.
    own_pause_seconds: float = 0.6

    def __post_init__(self) -> None:
        require_seconds(self, "speaker_change_reach_seconds", "own_pause_seconds")

    def reach_frames(self, frame_seconds: float) -> int:
        return round(self.speaker_change_reach_seconds / frame_seconds)

    def own_pause_frames(self, frame_seconds: float) -> int:
        return round(self.own_pause_seconds / frame_seconds)
