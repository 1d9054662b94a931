"""Training data for the segmentation model: AMI crop labels, augmentation, worker-count invariance.

Fake assets (a 44.1 kHz stereo noise, a 48 kHz RIR, a two-file "AMI" folder with an RTTM) are
written to tmp folders, so these run without ../shared/data; one test recounts a real AMI crop
and is marked `shared`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipelines.segmentation.augment import SegAugmentConfig, augment_chunk, load_chunk_assets
from pipelines.segmentation.data import AmiCorpus, crop_labels, load_ami, synthetic_pools, synthetic_voice
from pipelines.segmentation.loader import BatchMaker, BatchStream
from pipelines.simulation import ChunkConfig
from voiceflow import SAMPLE_RATE
from voiceflow.rttm import read_rttm
from voiceflow.segments import Segment

CHUNK = ChunkConfig(chunk_seconds=3.0)

# Speaker B's second turn overlaps A; C and D speak only at the end (4 speakers in 10-12 s).
RTTM = """\
SPEAKER trn00 1 0.500 2.000 <NA> <NA> A <NA> <NA>
SPEAKER trn00 1 2.200 1.500 <NA> <NA> B <NA> <NA>
SPEAKER trn00 1 3.000 2.000 <NA> <NA> A <NA> <NA>
SPEAKER trn00 1 6.000 1.000 <NA> <NA> C <NA> <NA>
SPEAKER trn00 1 10.000 1.500 <NA> <NA> D <NA> <NA>
SPEAKER trn00 1 10.200 1.000 <NA> <NA> A <NA> <NA>
SPEAKER trn00 1 10.400 1.000 <NA> <NA> B <NA> <NA>
SPEAKER trn01 1 1.000 3.000 <NA> <NA> E <NA> <NA>
"""


@pytest.fixture(scope="module")
def assets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("augmentation")
    (root / "noise").mkdir()
    (root / "rir").mkdir()
    rng = np.random.default_rng(0)
    sf.write(root / "noise" / "hum.wav", (0.1 * rng.standard_normal((44100 * 2, 2))).astype(np.float32), 44100)
    decay = np.exp(-np.arange(4800) / 800.0) * rng.standard_normal(4800)
    sf.write(root / "rir" / "room.wav", np.concatenate([np.zeros(100), decay]).astype(np.float32), 48000)
    return root


@pytest.fixture(scope="module")
def ami_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ami")
    (root / "train.rttm").write_text(RTTM)
    sf.write(root / "trn00.flac", np.concatenate([synthetic_voice(1, 6.0), synthetic_voice(2, 6.0)]), SAMPLE_RATE)
    sf.write(root / "trn01.wav", synthetic_voice(3, 5.0), SAMPLE_RATE)
    return root


def recount(turns: list[Segment], start: int, config: ChunkConfig) -> list[frozenset[str]]:
    """Active RTTM speakers at each frame centre of the crop, straight from the turns."""
    out = []
    for f in range(config.num_frames):
        t = (start + f * config.frame_samples + config.frame_samples // 2) / SAMPLE_RATE
        out.append(frozenset(s.speaker for s in turns if s.start <= t < s.end))
    return out


def check_crop(labels: np.ndarray, turns: list[Segment], start: int, config: ChunkConfig) -> None:
    expected = recount(turns, start, config)
    # Local speaker k is the k-th RTTM speaker to appear in the crop.
    order: list[str] = []
    for active in expected:
        order += sorted(s for s in active if s not in order)
    assert len(order) <= config.max_speakers
    for f, active in enumerate(expected):
        got = {order[k] for k in np.flatnonzero(labels[f])}
        assert got == set(active), f


def test_crop_labels_follow_the_rttm(ami_dir: Path) -> None:
    turns = read_rttm(ami_dir / "train.rttm")["trn00"]
    for seconds in (0.0, 1.3, 2.95, 4.0):
        start = int(seconds * SAMPLE_RATE)
        labels = crop_labels(turns, start, CHUNK)
        assert labels is not None and labels.shape == (CHUNK.num_frames, 3)
        check_crop(labels, turns, start, CHUNK)
    # From 2.6 s B speaks before A returns (3.0 s): B is local speaker 0, A speaker 1.
    labels = crop_labels(turns, int(2.6 * SAMPLE_RATE), CHUNK)
    assert labels is not None and labels[:20, 0].all() and not labels[:20, 1].any() and labels[25:50, 1].all()
    # 10-11.5 s: four speakers (and three at once) -> refused.
    assert crop_labels(turns, int(9.0 * SAMPLE_RATE), CHUNK) is None


def test_ami_corpus_crops(ami_dir: Path) -> None:
    corpus = load_ami(ami_dir, ["trn00", "trn01"])  # .flac and .wav
    rng = np.random.default_rng(5)
    for _ in range(20):
        wave, labels = corpus.crop(rng, CHUNK)
        assert wave.shape == (CHUNK.num_samples,) and labels.shape == (CHUNK.num_frames, 3)
        assert labels.sum(axis=1).max() <= 2
    with pytest.raises(ValueError, match="dev"):
        load_ami(ami_dir, ["trn00", "dev00"])


@pytest.mark.shared
def test_real_ami_crop_recounted_from_rttm(shared_data: Path) -> None:
    folder = shared_data / "ami-excerpts"
    corpus = load_ami(folder, ["trn00", "trn08"])
    config = ChunkConfig(chunk_seconds=5.0)
    rng = np.random.default_rng(1)
    for name in ("trn00", "trn08"):
        for _ in range(5):
            start = int(rng.integers(0, len(corpus.audio[name]) - config.num_samples))
            labels = crop_labels(corpus.turns[name], start, config)
            if labels is not None:
                check_crop(labels, corpus.turns[name], start, config)


def test_augmentation_keeps_shape_and_finite_values(assets_dir: Path) -> None:
    config = SegAugmentConfig(p_rir=1.0, p_noise=1.0)
    assets = load_chunk_assets(config, assets_dir)
    assert len(assets.noises) == 1 and len(assets.rirs) == 1
    assert assets.noises[0].ndim == 1 and abs(len(assets.noises[0]) - 2 * SAMPLE_RATE) <= 1  # 44.1 kHz stereo
    clean = synthetic_voice(7, 3.0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        out = augment_chunk(clean, rng, config, assets)
        assert out.shape == clean.shape and out.dtype == np.float32
        assert np.isfinite(out).all() and np.abs(out).max() <= 1.0
        assert not np.array_equal(out, clean)
    silent = augment_chunk(np.zeros_like(clean), rng, config, assets)
    assert np.isfinite(silent).all()
    # No files needed when nothing uses them.
    assert load_chunk_assets(SegAugmentConfig(p_rir=0, p_noise=0), assets_dir / "missing").noises == []


def test_batches_are_identical_for_any_worker_count(assets_dir: Path, ami_dir: Path) -> None:
    maker = BatchMaker(
        seed=3,
        batch_size=4,
        pool=synthetic_pools(4, 1).train,
        chunk=CHUNK,
        snr_db=(10.0, 30.0),
        augment=SegAugmentConfig(),
        assets=load_chunk_assets(SegAugmentConfig(), assets_dir),
        ami=load_ami(ami_dir, ["trn00", "trn01"]),
        p_ami=0.5,
    )
    assert isinstance(maker.ami, AmiCorpus)
    with BatchStream(maker, 2, 7, workers=0) as serial:
        expected = list(serial)
    with BatchStream(maker, 2, 7, workers=2, prefetch=2) as parallel:
        got = list(parallel)
    assert len(got) == len(expected) == 5
    for (w0, l0), (w1, l1) in zip(expected, got, strict=True):
        assert np.array_equal(w0, w1) and np.array_equal(l0, l1)
    assert not np.array_equal(expected[0][0], expected[1][0])


def test_the_telephone_channel_keeps_only_the_narrow_band() -> None:
    from pipelines.segmentation.augment import no_assets

    rng = np.random.default_rng(3)
    wideband = (rng.standard_normal(3 * SAMPLE_RATE) * 0.1).astype(np.float32)

    def high_band_share(x: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
        return float(spectrum[freqs > 4000].sum() / spectrum.sum())

    phone = augment_chunk(
        wideband,
        np.random.default_rng(0),
        SegAugmentConfig(p_rir=0, p_noise=0, gain_db=(0.0, 0.0), p_telephone=1.0),
        no_assets(),
    )
    assert high_band_share(wideband) > 0.4 and high_band_share(phone) < 0.01, "nothing above the 8 kHz line's band"
