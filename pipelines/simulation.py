"""Simulated conversations with exact speech-only references, built from single-speaker audio.

Each conversation draws 2-4 speakers, cuts their utterances into turns, and lays the turns out
with pauses and occasional overlaps. The reference marks only where each source turn is voiced
(an energy mask on the clean source), so pauses inside a turn are not counted as speech.
Everything follows from the seed: the same seed always gives the same audio and reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voiceflow import SAMPLE_RATE
from voiceflow.audio import load_audio
from voiceflow.segments import Segment, merge_adjacent
from voiceflow.vad import fill_short_runs

ENERGY_FRAME = 160  # 10 ms


@dataclass(frozen=True)
class SimulationConfig:
    """How one simulated conversation is drawn (every range is sampled uniformly per draw)."""

    # Who speaks, and for how long in all.
    min_speakers: int = 2
    max_speakers: int = 4
    duration_seconds: float = 45.0
    # Turn taking: a turn's length is uniform in [min, max]; the pause after it is exponential.
    min_turn_seconds: float = 1.0
    max_turn_seconds: float = 6.0
    mean_pause_seconds: float = 0.4
    # The next turn starts inside this one (0.2 s to max_overlap_seconds early) with this probability.
    overlap_probability: float = 0.15
    max_overlap_seconds: float = 1.0
    # Channel: each speaker's gain is drawn within +-level_spread_db; None = no background noise.
    level_spread_db: float = 6.0
    noise_snr_db: float | None = 30.0


@dataclass
class Conversation:
    uri: str
    audio: np.ndarray
    reference: list[Segment]
    speakers: list[str]


def speaker_of(path: Path) -> str:
    return path.name.split("-")[0]


def split_speakers(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """A fixed split by speaker id: every 5th speaker (sorted) is held out for evaluation.

    Training code must use only the first list; dev conversations use only the second, so a
    model is never scored on voices it was trained on.
    """
    ordered = sorted(paths, key=lambda p: int(speaker_of(p)) if speaker_of(p).isdigit() else 0)
    held_out = [p for i, p in enumerate(ordered) if i % 5 == 0]
    train = [p for i, p in enumerate(ordered) if i % 5 != 0]
    return train, held_out


def voiced_mask(samples: np.ndarray, floor_db: float = 35.0) -> np.ndarray:
    """10 ms frames within `floor_db` of the loud speech level, with 200 ms gaps bridged."""
    n = len(samples) // ENERGY_FRAME
    if n == 0:
        return np.zeros(0, dtype=bool)
    frames = samples[: n * ENERGY_FRAME].reshape(n, ENERGY_FRAME)
    energy_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    # Relative to the utterance's loud level, but never below an absolute floor (digital silence).
    mask = energy_db > max(float(np.percentile(energy_db, 95)) - floor_db, -70.0)
    return fill_short_runs(mask, False, 19)  # pauses under 200 ms are voiced


def _voiced_segments(mask: np.ndarray, offset: float, speaker: str) -> list[Segment]:
    segs: list[Segment] = []
    step = ENERGY_FRAME / SAMPLE_RATE
    idx = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    for s, e in zip(idx[0::2], idx[1::2], strict=True):
        segs.append(Segment(offset + s * step, offset + e * step, speaker))
    return segs


def simulate_conversation(
    sources: dict[str, np.ndarray],
    seed: int,
    config: SimulationConfig = SimulationConfig(),
    uri: str | None = None,
    noise: np.ndarray | None = None,
) -> Conversation:
    """Lay out turns from `sources` (speaker -> clean 16 kHz audio) into one conversation."""
    rng = np.random.default_rng(seed)
    names = sorted(sources)
    k = int(rng.integers(config.min_speakers, config.max_speakers + 1))
    chosen = [names[i] for i in rng.choice(len(names), size=min(k, len(names)), replace=False)]
    gains = {s: 10 ** (rng.uniform(-config.level_spread_db, config.level_spread_db) / 20) for s in chosen}
    cursor = {s: 0 for s in chosen}
    total = int(config.duration_seconds * SAMPLE_RATE)
    audio = np.zeros(total + SAMPLE_RATE * 10, dtype=np.float32)
    reference: list[Segment] = []
    t = 0
    previous: str | None = None
    while t < total:
        speaker = chosen[int(rng.integers(len(chosen)))]
        if speaker == previous and len(chosen) > 1:
            speaker = chosen[(chosen.index(speaker) + 1 + int(rng.integers(len(chosen) - 1))) % len(chosen)]
        source = sources[speaker]
        length = int(rng.uniform(config.min_turn_seconds, config.max_turn_seconds) * SAMPLE_RATE)
        if cursor[speaker] + length > len(source):
            cursor[speaker] = 0
        turn = source[cursor[speaker] : cursor[speaker] + length] * gains[speaker]
        cursor[speaker] += length
        audio[t : t + len(turn)] += turn
        reference.extend(_voiced_segments(voiced_mask(turn), t / SAMPLE_RATE, speaker))
        previous = speaker
        if rng.random() < config.overlap_probability:
            t += len(turn) - int(rng.uniform(0.2, config.max_overlap_seconds) * SAMPLE_RATE)
        else:
            t += len(turn) + int(rng.exponential(config.mean_pause_seconds) * SAMPLE_RATE)
        t = max(t, 0)
    end = max(int(max(seg.end for seg in reference) * SAMPLE_RATE), 1)
    audio = audio[: max(end, total)]
    if config.noise_snr_db is not None:
        speech_power = float(np.mean(audio**2)) + 1e-10
        background = _tile(noise, len(audio), rng) if noise is not None else rng.standard_normal(len(audio))
        background = background / (np.sqrt(np.mean(background**2)) + 1e-10)
        audio = audio + background.astype(np.float32) * np.sqrt(speech_power / 10 ** (config.noise_snr_db / 10))
    peak = float(np.max(np.abs(audio))) or 1.0
    if peak > 0.99:
        audio = audio * (0.99 / peak)
    reference = merge_adjacent(reference)
    return Conversation(uri or f"sim{seed:03d}", audio.astype(np.float32), reference, chosen)


def _tile(noise: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    reps = int(np.ceil(length / len(noise))) + 1
    tiled = np.tile(noise, reps)
    start = int(rng.integers(0, len(noise)))
    return tiled[start : start + length]


def load_sources(paths: list[Path]) -> dict[str, np.ndarray]:
    return {speaker_of(p): load_audio(p) for p in paths}


def build_dev_conversations(
    librispeech_dir: Path, count: int = 12, seed: int = 1000, config: SimulationConfig = SimulationConfig()
) -> list[Conversation]:
    """The simulated dev set: `count` conversations of held-out speakers, fixed by `seed`."""
    paths = sorted(Path(librispeech_dir).glob("*.flac"))
    _, held_out = split_speakers(paths)
    sources = load_sources(held_out)
    return [simulate_conversation(sources, seed + i, config, uri=f"sim{i:02d}") for i in range(count)]


# --- Frame-level training targets for overlap-aware segmentation (issue 9) -------------------
#
# Everything below is new and used only by the segmentation training code; the conversation
# simulator above (and its defaults) is unchanged. Positions are integer sample indices so that
# overlap bookkeeping is exact: a frame is active for a speaker when the frame's centre sample
# lies inside one of that speaker's intervals, so two intervals overlap on exactly the frames
# whose centres lie in their intersection.

CHUNK_FRAME_SAMPLES = 320  # 20 ms at 16 kHz: the segmentation model's output frame


def _samples(seconds: float) -> int:
    """Seconds -> the nearest whole sample: all layout arithmetic is in integer samples."""
    return round(seconds * SAMPLE_RATE)


@dataclass(frozen=True)
class LogNormal:
    """A duration distribution, in seconds: median * exp(sigma * N(0, 1)).

    Log-normal because measured pause and overlap durations are positive and right-skewed
    (many short gaps, a long tail); `median` and `sigma` are the two numbers one reads off them.
    """

    median: float
    sigma: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(self.median * np.exp(self.sigma * rng.standard_normal()))


@dataclass(frozen=True)
class Empirical:
    """Durations (seconds) measured on real conversations, drawn uniformly with replacement.

    This is Landini et al.'s own method (they sample from histograms measured on the target
    domain); build it with `turn_taking_statistics` from a reference RTTM.
    """

    values: tuple[float, ...]

    def sample(self, rng: np.random.Generator) -> float:
        if not self.values:
            raise ValueError("no measured durations to draw from")
        return float(self.values[int(rng.integers(len(self.values)))])


@dataclass(frozen=True)
class TurnTakingConfig:
    """Turn-taking of "From Simulated Mixtures to Simulated Conversations as Training Data for
    End-to-End Neural Diarization" (Landini, Lozano-Diez, Diez, Burget; Interspeech 2022).

    Their rule, followed here: after a speech segment, if the next one is by the same speaker a
    pause is drawn from the within-speaker pause distribution; on a speaker change, with
    probability 1 - p_overlap a pause is drawn from the between-speaker pause distribution,
    otherwise an overlap (negative gap) from the overlap distribution. They estimate all three
    distributions and p_overlap from real conversations (Callhome / DIHARD / Switchboard).

    Two deliberate differences, and why:
    - The defaults are log-normal stand-ins, not their histograms (which we cannot reach
      offline): within-speaker pause median 0.5 s, between-speaker pause median 0.3 s, overlap
      median 0.4 s, p_overlap 0.3, segment median 1.5 s: our round-number choices for
      conversational speech, not measured. For comparison, `turn_taking_statistics` on
      ami-excerpts/train.rttm (10 x 30 s, only 67 gaps, excerpts picked for overlap) gives
      medians within 1.5 s (9), between 1.07 s (16), overlap 0.83 s (42), p_overlap 0.72,
      segment 1.29 s. Pass `Empirical(...)` distributions to train on measured ones
      (`data.turn_taking: ami` does: pipelines/segmentation/turn_taking.py).
    - The speaker sequence is a Markov chain (same speaker with `p_same_speaker`, else uniform
      among the others) instead of a random interleaving of each speaker's real utterance
      segments: targets are generated without audio, so there are no utterances to interleave.
    """

    within_pause: LogNormal | Empirical = LogNormal(0.5, 0.8)
    between_pause: LogNormal | Empirical = LogNormal(0.3, 0.8)
    overlap: LogNormal | Empirical = LogNormal(0.4, 0.7)
    p_overlap: float = 0.3
    p_same_speaker: float = 0.3
    segment: LogNormal | Empirical = LogNormal(1.5, 0.6)
    min_segment_seconds: float = 0.2
    # Backchannels ("yeah", "mm"): after a turn, with this probability another speaker says
    # something short wholly inside it. 0 (the default) draws nothing, so layouts are unchanged.
    p_backchannel: float = 0.0
    backchannel: LogNormal | Empirical = LogNormal(0.4, 0.5)


@dataclass(frozen=True)
class ChunkConfig:
    """One training chunk: ~5 s, 20 ms frames, up to 3 local speakers, at most 2 at once."""

    chunk_seconds: float = 5.0
    frame_samples: int = CHUNK_FRAME_SAMPLES
    max_speakers: int = 3
    # Turns are laid out from up to this long before the chunk, so most chunks open mid-turn
    # as a sliding window over a real conversation does.
    lead_in_seconds: float = 3.0
    turn_taking: TurnTakingConfig = TurnTakingConfig()
    # P(1), P(2), ... P(max_speakers) speakers in a chunk; empty = uniform (today's draw). Weights
    # on more speakers buy more 3-speaker chunks without changing the powerset's output format.
    speaker_count_weights: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        weights = self.speaker_count_weights
        if weights and (len(weights) != self.max_speakers or min(weights) < 0 or sum(weights) <= 0):
            raise ValueError(f"speaker_count_weights needs {self.max_speakers} non-negative weights, got {weights}")

    @property
    def num_samples(self) -> int:
        return _samples(self.chunk_seconds)

    @property
    def num_frames(self) -> int:
        return self.num_samples // self.frame_samples


@dataclass(frozen=True)
class Interval:
    """Speaker `speaker` (local index) is active on samples [start, end)."""

    speaker: int
    start: int
    end: int


def frame_labels(intervals: list[Interval], num_frames: int, num_speakers: int, frame_samples: int) -> np.ndarray:
    """[num_frames, num_speakers] uint8: 1 where the frame's centre sample is inside an interval.

    The centre rule makes every frame belong to exactly the intervals covering its centre, so
    overlaps are counted on the same frames from both sides, never half a frame each.
    """
    labels = np.zeros((num_frames, num_speakers), dtype=np.uint8)
    centres = np.arange(num_frames) * frame_samples + frame_samples // 2
    for iv in intervals:
        labels[(centres >= iv.start) & (centres < iv.end), iv.speaker] = 1
    return labels


def sample_chunk_turns(rng: np.random.Generator, config: ChunkConfig = ChunkConfig()) -> list[Interval]:
    """Turns of 1..max_speakers speakers, Landini-style gaps, clipped to the chunk.

    Never more than 2 speakers at once: a turn may overlap only the turn that currently ends
    last (the "frontier"), and starts no earlier than every other turn's end. Local speakers are
    numbered by first appearance inside the chunk, so used speakers are always 0..n-1.
    """
    tt = config.turn_taking
    k = _speaker_count(rng, config)
    start = -_samples(rng.uniform(0.0, config.lead_in_seconds))
    speaker = int(rng.integers(k))
    turns: list[Interval] = []
    frontier: Interval | None = None  # the placed turn that ends last
    second_end = start  # the latest end among all other placed turns
    while start < config.num_samples:
        length = max(_samples(tt.segment.sample(rng)), _samples(tt.min_segment_seconds))
        turn = Interval(speaker, start, start + length)
        turns.append(turn)
        if frontier is None or turn.end > frontier.end:
            second_end = max(second_end, frontier.end if frontier else start)
            frontier = turn
            if tt.p_backchannel > 0 and k > 1 and rng.random() < tt.p_backchannel:
                backchannel = _backchannel(rng, tt, k, turn, second_end)
                if backchannel is not None:
                    turns.append(backchannel)
                    second_end = backchannel.end
        else:
            second_end = max(second_end, turn.end)
        speaker, start = _next_turn(rng, tt, k, frontier, second_end)
    return _clip_and_renumber(turns, config.num_samples)


def _speaker_count(rng: np.random.Generator, config: ChunkConfig) -> int:
    if not config.speaker_count_weights:
        return int(rng.integers(1, config.max_speakers + 1))
    p = np.asarray(config.speaker_count_weights, dtype=np.float64)
    return int(rng.choice(config.max_speakers, p=p / p.sum())) + 1


def _backchannel(
    rng: np.random.Generator, tt: TurnTakingConfig, k: int, turn: Interval, second_end: int
) -> Interval | None:
    """Another speaker's short turn wholly inside `turn`, starting after every other turn ended
    (so never a third voice at once); None when it does not fit."""
    others = [s for s in range(k) if s != turn.speaker]
    speaker = others[int(rng.integers(len(others)))]
    length = max(_samples(tt.backchannel.sample(rng)), 1)
    earliest, latest = max(turn.start, second_end), turn.end - length
    if latest <= earliest:
        return None
    start = int(rng.integers(earliest, latest))
    return Interval(speaker, start, start + length)


def _next_turn(
    rng: np.random.Generator, tt: TurnTakingConfig, k: int, frontier: Interval, second_end: int
) -> tuple[int, int]:
    """(speaker, start sample) of the next turn, by Landini et al.'s gap rule."""
    if k == 1 or rng.random() < tt.p_same_speaker:
        return frontier.speaker, frontier.end + _samples(tt.within_pause.sample(rng))
    others = [s for s in range(k) if s != frontier.speaker]
    speaker = others[int(rng.integers(len(others)))]
    if rng.random() < tt.p_overlap:
        start = frontier.end - _samples(tt.overlap.sample(rng))
        # Overlap at most the frontier turn itself, and never a third speaker.
        return speaker, max(start, frontier.start, second_end)
    return speaker, frontier.end + _samples(tt.between_pause.sample(rng))


def _clip_and_renumber(turns: list[Interval], num_samples: int) -> list[Interval]:
    clipped = [Interval(t.speaker, max(t.start, 0), min(t.end, num_samples)) for t in turns]
    clipped = sorted((t for t in clipped if t.end > t.start), key=lambda t: (t.start, t.end, t.speaker))
    order: dict[int, int] = {}
    for t in clipped:
        order.setdefault(t.speaker, len(order))
    return [Interval(order[t.speaker], t.start, t.end) for t in clipped]


def max_simultaneous(intervals: list[Interval]) -> int:
    """The largest number of distinct speakers active at any one sample."""
    events = sorted([(iv.start, 1, iv.speaker) for iv in intervals] + [(iv.end, -1, iv.speaker) for iv in intervals])
    active: dict[int, int] = {}
    best = 0
    for _, delta, speaker in events:  # ends sort before starts at the same sample: [start, end)
        active[speaker] = active.get(speaker, 0) + delta
        best = max(best, sum(1 for n in active.values() if n > 0))
    return best


def render_chunk(
    turns: list[Interval],
    sources: list[np.ndarray],
    rng: np.random.Generator,
    config: ChunkConfig = ChunkConfig(),
    level_spread_db: float = 6.0,
    *,
    per_speaker: bool = False,
) -> tuple[np.ndarray, list[Interval]]:
    """(audio [num_samples] float32, voiced intervals) for `turns`, speaker s read from sources[s].

    Each turn takes a random stretch of its speaker's clean audio. The returned intervals are the
    turns narrowed to where that audio is voiced (`voiced_mask`, 10 ms resolution), so pauses
    inside an utterance are not labelled speech — the same rule as the conversation reference.

    With `per_speaker`, each speaker is on its own track ([len(sources), num_samples] float32),
    so each can go through its own room before the mix. Same draws, same voiced intervals; the
    tracks' sum is the mixed audio up to float32 rounding where two voices overlap.
    """
    shape = (len(sources), config.num_samples) if per_speaker else (config.num_samples,)
    out = np.zeros(shape, dtype=np.float32)
    voiced: list[Interval] = []
    for turn, piece in _turn_pieces(turns, sources, rng, level_spread_db):
        track = out[turn.speaker] if per_speaker else out
        track[turn.start : turn.end] += piece
        voiced.extend(_voiced_intervals(turn, piece))
    return out, voiced


def _turn_pieces(
    turns: list[Interval], sources: list[np.ndarray], rng: np.random.Generator, level_spread_db: float
) -> list[tuple[Interval, np.ndarray]]:
    """Each turn with its stretch of its speaker's audio at the speaker's level (drawn first)."""
    speakers = sorted({t.speaker for t in turns})
    gains = {s: 10 ** (rng.uniform(-level_spread_db, level_spread_db) / 20) for s in speakers}
    return [
        (turn, _random_stretch(sources[turn.speaker], turn.end - turn.start, rng) * gains[turn.speaker])
        for turn in turns
    ]


def _voiced_intervals(turn: Interval, piece: np.ndarray) -> list[Interval]:
    """The turn narrowed to where its (dry) audio is voiced."""
    out = []
    for seg in _voiced_segments(voiced_mask(piece), 0.0, str(turn.speaker)):
        start = turn.start + _samples(seg.start)
        end = min(turn.start + _samples(seg.end), turn.end)
        out.append(Interval(turn.speaker, start, end))
    return out


def _random_stretch(source: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    if len(source) < length:
        source = np.tile(source, int(np.ceil(length / max(len(source), 1))) + 1)
    offset = int(rng.integers(0, len(source) - length + 1))
    return source[offset : offset + length]


@dataclass(frozen=True)
class TurnTakingStatistics:
    """Gaps measured on a reference, in seconds, as Landini et al. measure them."""

    within_pauses: tuple[float, ...]
    between_pauses: tuple[float, ...]
    overlaps: tuple[float, ...]
    # Durations of the segments that are not backchannels, and of the backchannels (both empty
    # unless asked for: `turn_taking_statistics(..., backchannel_seconds=...)`).
    segments: tuple[float, ...] = ()
    backchannels: tuple[float, ...] = ()

    @property
    def p_overlap(self) -> float:
        changes = len(self.between_pauses) + len(self.overlaps)
        return len(self.overlaps) / changes if changes else 0.0

    @property
    def p_same_speaker(self) -> float:
        """How often the next segment is the same speaker's (the simulator's Markov chain)."""
        gaps = len(self.within_pauses) + len(self.between_pauses) + len(self.overlaps)
        return len(self.within_pauses) / gaps if gaps else 0.0

    @property
    def p_backchannel(self) -> float:
        """Backchannels per (non-backchannel) segment: the simulator's draw after each turn."""
        return min(len(self.backchannels) / len(self.segments), 1.0) if self.segments else 0.0

    def __add__(self, other: TurnTakingStatistics) -> TurnTakingStatistics:
        """Pooled over recordings (each recording measured on its own: gaps never span two)."""
        return TurnTakingStatistics(
            self.within_pauses + other.within_pauses,
            self.between_pauses + other.between_pauses,
            self.overlaps + other.overlaps,
            self.segments + other.segments,
            self.backchannels + other.backchannels,
        )


def turn_taking_statistics(reference: list[Segment], backchannel_seconds: float | None = None) -> TurnTakingStatistics:
    """Pauses and overlaps of one conversation's reference (segments of one recording).

    Segments are walked in start order against the frontier (the earlier segment that ends
    last), the same bookkeeping `sample_chunk_turns` generates with: same speaker -> a
    within-speaker pause; another speaker starting after the frontier's end -> a between-speaker
    pause; starting before it -> an overlap of (frontier end - start), capped at the segment's
    own length when it lies wholly inside the frontier.

    With `backchannel_seconds`, another speaker's segment shorter than that lying wholly inside
    the frontier is a backchannel instead (not an overlap), as `sample_chunk_turns` places them,
    and the segment durations are recorded too.
    """
    within: list[float] = []
    between: list[float] = []
    overlaps: list[float] = []
    lengths: list[float] = []
    backchannels: list[float] = []
    frontier: Segment | None = None
    for seg in sorted(reference, key=lambda s: (s.start, s.end)):
        length = seg.end - seg.start
        if (
            backchannel_seconds is not None
            and frontier is not None
            and seg.speaker != frontier.speaker
            and length < backchannel_seconds
            and frontier.start <= seg.start
            and seg.end <= frontier.end
        ):
            backchannels.append(length)
            continue
        if frontier is not None:
            gap = seg.start - frontier.end
            if seg.speaker == frontier.speaker:
                if gap > 0:
                    within.append(gap)
            elif gap >= 0:
                between.append(gap)
            else:
                overlaps.append(min(-gap, length))
        if backchannel_seconds is not None:
            lengths.append(length)
        if frontier is None or seg.end > frontier.end:
            frontier = seg
    return TurnTakingStatistics(tuple(within), tuple(between), tuple(overlaps), tuple(lengths), tuple(backchannels))
