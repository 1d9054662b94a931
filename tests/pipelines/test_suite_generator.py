"""The dev suite's generator: deterministic, exact ground truth in overlap, real channel effects,
and a full-size manifest that covers every stratum (issue 22)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.evaluation.suite import channels
from pipelines.evaluation.suite.cache import load_suite
from pipelines.evaluation.suite.conversations import FRAME, Turn, layout, speaker_shares, style_for
from pipelines.evaluation.suite.manifest import (
    CHANNELS,
    SPEAKER_STRATA,
    RecordingSpec,
    SuiteConfig,
    build_manifest,
    strata_counts,
    total_seconds,
)
from pipelines.evaluation.suite.render import (
    REFERENCE_BRIDGE_SECONDS,
    Source,
    SourceBank,
    reference_from_active,
    render,
    render_turns,
)
from tests.pipelines.suite_support import tiny_suite
from voiceflow.vad import fill_short_runs

SR = 16000
TINY = tiny_suite("tiny", ("far-field", "telephone"))


@pytest.fixture(scope="module")
def bank(shared_data: Path) -> SourceBank:
    return SourceBank.load(shared_data)


def test_same_seed_same_audio_bytes_and_reference(bank: SourceBank) -> None:
    meeting = {"rt60": 0.3, "drr_db": 5.0, "snr_db": 20.0, "noise_index": 3}
    spec = RecordingSpec("t-0", 1234, 3, "3", "meeting", 20.0, ("short-turns",), meeting)
    a, b = render(spec, bank), render(spec, bank)
    assert a.audio.tobytes() == b.audio.tobytes()
    assert a.reference == b.reference
    other = render(RecordingSpec(**{**spec.__dict__, "seed": 1235}), bank)
    assert other.audio.tobytes() != a.audio.tobytes()


def test_the_cache_returns_what_was_rendered(bank: SourceBank, shared_data: Path, tmp_path: Path) -> None:
    first, folder = load_suite(TINY, shared_data, tmp_path)
    again, folder2 = load_suite(TINY, shared_data, tmp_path)
    assert folder == folder2 and (folder / "manifest.json").is_file()
    assert len(first) == len(build_manifest(TINY)) == 4
    for x, y in zip(first, again, strict=True):
        assert x.audio.tobytes() == y.audio.tobytes() and x.reference == y.reference
        assert x.audio.tobytes() == render(x.spec, bank).audio.tobytes()
    # another config is another cache entry
    _, other = load_suite(SuiteConfig(**{**TINY.__dict__, "seed": 5}), shared_data, tmp_path)
    assert other != folder


def _source(name: str, voiced: np.ndarray, seed: int) -> Source:
    audio = np.random.default_rng(seed).standard_normal(len(voiced) * FRAME).astype(np.float32) * 0.1
    audio *= np.repeat(voiced, FRAME)  # silent where not voiced
    return Source(name, audio, voiced)


def test_reference_is_exact_where_speakers_overlap() -> None:
    # A talks on frames 0-300; B on 200-450, but B's source is silent on its frames 60-90
    # (turn frames 260-290): there only A is speech, elsewhere in 200-300 both are.
    voiced_a = np.ones(400, dtype=bool)
    voiced_b = np.ones(400, dtype=bool)
    voiced_b[60:90] = False
    sources = [_source("A", voiced_a, 0), _source("B", voiced_b, 1)]
    turns = [Turn(0, 0, 300), Turn(1, 200, 250)]

    class FirstFrame:  # the offset picker draws integers: make every piece start at frame 0
        def integers(self, low: int, high: int | None = None) -> int:
            return 0

    tracks, active = render_turns(turns, sources, FirstFrame())  # type: ignore[arg-type]
    reference = reference_from_active(active, ["A", "B"])
    centres = (np.arange(450) + 0.5) * 0.01
    labels = [{s.speaker for s in reference if s.start <= t < s.end} for t in centres]
    for f in range(450):
        expected = {"A"} if f < 200 else set()
        if f < 300:
            expected = {"A"}
        if 200 <= f < 450 and not 260 <= f < 290:
            expected = expected | {"B"}
        assert labels[f] == expected, f
    # and the audio holds both voices exactly where the reference says so
    assert np.allclose(tracks[0][: 300 * FRAME], sources[0].audio[: 300 * FRAME])
    assert np.allclose(tracks[1][200 * FRAME : 450 * FRAME], sources[1].audio[: 250 * FRAME])


def test_a_speakers_short_pauses_are_speech_in_the_reference_as_people_annotate() -> None:
    mask = np.zeros(60, dtype=bool)
    mask[0:10] = mask[15:20] = mask[40:50] = True  # pauses of 5 and 20 frames; silence at the end stays
    # pauses shorter than N frames, i.e. of at most N - 1 (voiceflow.vad.fill_short_runs, the VAD's own rule)
    assert fill_short_runs(mask, False, 10 - 1).tolist() == ([True] * 20 + [False] * 20 + [True] * 10 + [False] * 10)
    assert fill_short_runs(mask, False, 21 - 1)[:50].all() and not fill_short_runs(mask, False, 21 - 1)[50:].any()
    assert fill_short_runs(mask, False, 0 - 1).tolist() == mask.tolist()
    # per speaker: A's pause is bridged; B, talking during it, keeps its own runs
    active = np.zeros((2, 300), dtype=bool)
    active[0, 0:100] = active[0, 150:300] = True
    active[1, 110:140] = True
    reference = reference_from_active(active, ["A", "B"], bridge_frames=round(REFERENCE_BRIDGE_SECONDS / 0.01))
    assert [(s.start, s.end, s.speaker) for s in reference] == [(0.0, 3.0, "A"), (1.1, 1.4, "B")]
    exact = reference_from_active(active, ["A", "B"])
    assert [(s.start, s.end, s.speaker) for s in exact] == [(0.0, 1.0, "A"), (1.1, 1.4, "B"), (1.5, 3.0, "A")]


def test_telephone_band_limits_the_signal() -> None:
    noise = np.random.default_rng(0).standard_normal(4 * SR).astype(np.float32) * 0.1
    out = channels.telephone(noise)
    assert len(out) == len(noise)
    spectrum = np.abs(np.fft.rfft(out)) ** 2
    freqs = np.fft.rfftfreq(len(out), 1 / SR)
    band = spectrum[(freqs > 400) & (freqs < 3200)].mean()
    assert spectrum[freqs > 4200].mean() < band * 1e-3  # nothing above the 8 kHz Nyquist
    assert spectrum[freqs < 150].mean() < band * 1e-2  # the 300 Hz high-pass
    assert spectrum[(freqs > 3700) & (freqs < 4000)].mean() < band * 0.05


def test_mu_law_quantises_to_256_levels() -> None:
    x = np.linspace(-1, 1, 10001)
    assert len(np.unique(channels.mu_law_round_trip(x))) <= 256
    error = np.abs(channels.mu_law_round_trip(x) - x)
    assert np.all(error <= 0.03 * np.abs(x) + 2e-4)  # companding: the step grows with the level


@pytest.mark.parametrize("snr", [0.0, 7.5, 20.0])
def test_noise_is_added_at_the_asked_snr(snr: float) -> None:
    rng = np.random.default_rng(1)
    speech = (rng.standard_normal(3 * SR) * 0.2).astype(np.float32)
    speech[SR : 2 * SR] = 0.0  # a pause: the SNR is taken over the speech, not the pause
    mask = np.abs(speech) > 0
    noise = rng.standard_normal(SR // 2)  # shorter than the speech: it loops
    out = channels.add_noise(speech, noise, snr, np.random.default_rng(2), mask)
    achieved = 10 * np.log10(channels.power(speech, mask) / channels.power(out - speech))
    assert abs(achieved - snr) < 0.05


def test_synthetic_rir_decays_at_its_rt60() -> None:
    rir = channels.synthetic_rir(np.random.default_rng(0), 0.5)
    assert rir[0] == 1.0 and len(rir) == SR // 2
    energy = np.cumsum(rir[::-1] ** 2)[::-1]  # Schroeder integral
    level = 10 * np.log10(energy / energy[0] + 1e-20)
    t20 = np.argmax(level < -20) / SR
    assert 0.1 < 3 * t20 < 0.7  # the tail's decay extrapolates to ~0.5 s for 60 dB


def test_level_imbalance_puts_two_talkers_20_db_apart() -> None:
    gains = channels.level_gains(np.random.default_rng(0), 4, 10.0, force_extremes=True)
    db = 20 * np.log10(gains)
    assert db.max() == pytest.approx(10.0) and db.min() == pytest.approx(-10.0)


def test_full_manifest_covers_every_stratum_without_rendering() -> None:
    specs = build_manifest(SuiteConfig())
    counts = strata_counts(specs)
    assert len(specs) >= 100
    for name, lo, hi in SPEAKER_STRATA:
        assert counts[f"speakers:{name}"] >= 12
        assert all(lo <= s.num_speakers <= hi for s in specs if s.speaker_stratum == name)
    for channel in CHANNELS:
        assert counts[f"channel:{channel}"] >= 12
    assert counts["flag:dominant"] >= 20 and counts["flag:short-turns"] >= 20
    durations = [s.duration_seconds for s in specs]
    assert min(durations) >= 15.0 and max(durations) <= 600.0
    assert sum(d >= 300 for d in durations) >= 3  # a few long ones
    assert sum(30 <= d <= 120 for d in durations) > len(specs) / 2  # most of them 30-120 s
    assert total_seconds(specs) < 3 * 3600
    assert len({s.uri for s in specs}) == len(specs) and len({s.seed for s in specs}) == len(specs)
    assert build_manifest(SuiteConfig()) == specs  # deterministic


def test_dominant_speakers_hold_most_of_the_talk_and_short_turns_are_short() -> None:
    for spec in build_manifest(SuiteConfig()):
        rng = np.random.default_rng(spec.seed)
        style = style_for("dominant" in spec.flags, "short-turns" in spec.flags, spec.channel == "meeting")
        turns = layout(spec.num_speakers, spec.duration_seconds, style, rng)
        shares = speaker_shares(turns, spec.num_speakers)
        assert (shares > 0).all(), spec.uri  # everyone speaks
        if "dominant" in spec.flags:
            assert shares.max() >= 0.6, spec.uri
        if "short-turns" in spec.flags:
            short = sum(t.length < 100 for t in turns)  # turns and backchannels < 1 s
            assert short >= 2 and short >= 0.2 * len(turns), spec.uri


def test_rendered_dominant_recording_has_a_dominant_reference(bank: SourceBank) -> None:
    spec = next(s for s in build_manifest() if "dominant" in s.flags and s.duration_seconds < 60)
    recording = render(spec, bank)
    talk: dict[str, float] = {}
    for seg in recording.reference:
        talk[seg.speaker] = talk.get(seg.speaker, 0.0) + seg.duration
    assert len(talk) == spec.num_speakers
    assert max(talk.values()) / sum(talk.values()) >= 0.6
