from pathlib import Path

import numpy as np
import pytest

from pipelines.simulation import SimulationConfig, simulate_conversation, split_speakers, voiced_mask
from voiceflow.config import ConfigError, EngineConfig, load_engine_config, parse_engine_config
from voiceflow.vad import SileroVAD, VADConfig, probabilities_to_mask, speech_regions

DATA = Path(__file__).resolve().parents[1] / "data"


def test_config_round_trip_and_nesting(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "offline:\n  step_seconds: 0.3\n  clustering: {threshold: 0.8}\nstreaming:\n  vad: {threshold: 0.4}\n"
    )
    config = load_engine_config(path)
    assert config.offline.step_seconds == 0.3 and config.offline.clustering.threshold == 0.8
    assert config.streaming.vad.threshold == 0.4
    assert parse_engine_config(None) == EngineConfig()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"offline": {"nope": 1}}, r"offline\.nope: unknown setting"),
        ({"offline": {"step_seconds": "fast"}}, r"offline\.step_seconds: .*valid number, got str"),
        ({"offline": {"step_seconds": True}}, r"offline\.step_seconds: .*valid number, got bool"),
        ({"offline": {"embed_batch_size": 2.0}}, r"offline\.embed_batch_size: .*valid integer, got float"),
        ({"offline": {"vad": {"threshold": 3}}}, "threshold"),
        ({"offline": []}, "expected a mapping"),
        (["not", "a", "mapping"], "expected a mapping"),
        ({"streaming": {"clustering": {"confirm_windows": 0}}}, ">= 1"),
    ],
)
def test_malformed_configs_are_refused_clearly(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_engine_config(data)


def test_a_flood_of_bad_settings_gives_a_short_message() -> None:
    with pytest.raises(ConfigError, match=r"config\.k4: unknown setting; and 995 more$") as caught:
        parse_engine_config({f"k{i}": 1 for i in range(1000)})
    assert len(str(caught.value)) < 300


def test_hostile_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such"):
        load_engine_config(tmp_path / "missing.yaml")
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * 300_000)
    with pytest.raises(ConfigError, match="larger than"):
        load_engine_config(big)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_engine_config(bad)
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError):
        load_engine_config(tagged)


def test_vad_finds_speech_in_a_meeting_and_none_in_silence() -> None:
    from voiceflow.audio import load_audio

    audio = load_audio(DATA / "dev00.wav")
    probs = SileroVAD().probabilities(audio)
    assert len(probs) == len(audio) // 512
    mask = probabilities_to_mask(probs, VADConfig())
    assert 0.4 < mask.mean() < 0.95
    assert not probabilities_to_mask(SileroVAD().probabilities(np.zeros(16000, np.float32)), VADConfig()).any()


def test_vad_is_chunk_size_independent() -> None:
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    whole = SileroVAD().probabilities(audio)
    vad = SileroVAD()
    parts = np.concatenate([vad.feed(audio[i : i + 700]) for i in range(0, len(audio), 700)])
    np.testing.assert_allclose(whole, parts, atol=1e-6)


def test_mask_postprocessing_is_pure() -> None:
    probs = np.array([0.1, 0.9, 0.1, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1])
    mask = probabilities_to_mask(
        probs, VADConfig(min_speech_seconds=0.1, min_silence_seconds=0.05, speech_pad_seconds=0)
    )
    assert mask[1:11].all() and not mask[12:].any()
    assert speech_regions(mask)[0][0] == pytest.approx(0.032)
    with pytest.raises(ValueError):
        VADConfig(threshold=1.5)


def test_simulator_is_reproducible_and_its_reference_is_exact() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 8) / 16000
    sources = {}
    for i, f in enumerate((200, 300, 450)):
        tone = np.sin(2 * np.pi * f * t) * 0.3
        tone[(t % 2) > 1.5] = 0  # a 0.5 s pause every 2 s: not speech in the reference
        sources[f"s{i}"] = (tone + rng.standard_normal(t.size) * 1e-4).astype(np.float32)
    config = SimulationConfig(duration_seconds=20, noise_snr_db=None, overlap_probability=0.5)
    a = simulate_conversation(sources, seed=3, config=config)
    b = simulate_conversation(sources, seed=3, config=config)
    assert np.array_equal(a.audio, b.audio) and a.reference == b.reference
    # Where the reference says nobody speaks, the mixture is silent; where it says speech, it is not.
    for seg in a.reference:
        chunk = a.audio[int(seg.start * 16000) : int(seg.end * 16000)]
        assert np.sqrt(np.mean(chunk**2)) > 0.01
    assert {s.speaker for s in a.reference} <= set(sources)
    assert voiced_mask(np.zeros(16000, np.float32)).sum() == 0


def test_speaker_split_is_disjoint() -> None:
    paths = [Path(f"{i}-1-0000.flac") for i in range(100, 150)]
    train, held = split_speakers(paths)
    assert not {p.name.split("-")[0] for p in train} & {p.name.split("-")[0] for p in held}
    assert len(held) == 10
