"""Every offline clustering method on synthetic embeddings with a known speaker count.

Embeddings are unit vectors: a per-speaker voice plus window noise plus one direction every window
of every speaker shares (the channel), laid out in turns as a conversation is. The PLDA the VBx
methods need is trained on other synthetic speakers of the same world, never the test ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.clustering.plda_train import train_plda
from voiceflow.clustering.offline import ALGORITHMS, OfflineClusteringConfig, cluster_embeddings
from voiceflow.clustering.plda import PLDA, PLDAError, load_plda, plda_scores, save_plda
from voiceflow.clustering.vbx import VBxConfig

DIM = 32
CHANNEL = np.random.default_rng(7).standard_normal(DIM) * 1.5
NEW_METHODS = ("nme-sc", "vbx", "ahc-vbx")


def conversation(rng: np.random.Generator, sizes: list[int], noise: float = 0.45) -> tuple[np.ndarray, np.ndarray]:
    """Unit embeddings and their speakers, in turns of 5-15 windows drawn by remaining share."""
    voices = rng.standard_normal((len(sizes), DIM))
    left = np.array(sizes)
    order: list[int] = []
    while left.sum() > 0:
        speaker = int(rng.choice(len(sizes), p=left / left.sum()))
        run = min(int(left[speaker]), int(rng.integers(5, 16)))
        order += [speaker] * run
        left[speaker] -= run
    truth = np.array(order)
    x = voices[truth] + noise * rng.standard_normal((len(truth), DIM)) + CHANNEL
    return x / np.linalg.norm(x, axis=1, keepdims=True), truth


@pytest.fixture(scope="module")
def plda() -> PLDA:
    rng = np.random.default_rng(100)
    parts = [conversation(rng, [30]) for _ in range(150)]
    x = np.concatenate([p[0] for p in parts])
    speakers = np.repeat(np.arange(150), 30)
    return train_plda(x, speakers, lda_dim=24)


def purity(labels: np.ndarray, truth: np.ndarray) -> float:
    return float(sum(np.bincount(truth[labels == c]).max() for c in np.unique(labels)) / len(truth))


CASES = {
    "1": [80],
    "2": [60, 60],
    "3-unequal": [90, 40, 20],
    "4": [50] * 4,
    "5": [40] * 5,
    "6-dominant": [240] + [20] * 5,
    "8": [40] * 8,
}


@pytest.mark.parametrize("method", NEW_METHODS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_method_recovers_count_and_speakers(method: str, case: str, plda: PLDA) -> None:
    sizes = CASES[case]
    x, truth = conversation(np.random.default_rng(1000 + len(sizes) * 7 + sizes[0]), sizes)
    labels = cluster_embeddings(x, OfflineClusteringConfig(algorithm=method), plda=plda)
    assert len(np.unique(labels)) == len(sizes)
    assert purity(labels, truth) >= 0.95
    assert purity(truth, labels) >= 0.95  # no speaker split across clusters either
    assert list(np.unique(labels)) == list(range(len(sizes)))  # numbered 0..K-1


@pytest.mark.parametrize("method", ALGORITHMS)
def test_method_honours_speaker_bounds(method: str, plda: PLDA) -> None:
    x, truth = conversation(np.random.default_rng(5), [40] * 4)
    config = OfflineClusteringConfig(algorithm=method)
    assert len(np.unique(cluster_embeddings(x, config, num_speakers=2, plda=plda))) == 2
    assert len(np.unique(cluster_embeddings(x, config, num_speakers=6, plda=plda))) == 6
    assert len(np.unique(cluster_embeddings(x, config, max_speakers=3, plda=plda))) <= 3
    assert len(np.unique(cluster_embeddings(x, config, min_speakers=5, plda=plda))) >= 5
    exact = cluster_embeddings(x, config, min_speakers=4, max_speakers=4, plda=plda)
    assert len(np.unique(exact)) == 4 and purity(exact, truth) >= 0.95


@pytest.mark.parametrize("method", ALGORITHMS)
def test_method_is_deterministic_and_handles_tiny_inputs(method: str, plda: PLDA) -> None:
    x, _ = conversation(np.random.default_rng(11), [50, 30, 30])
    config = OfflineClusteringConfig(algorithm=method)
    assert np.array_equal(cluster_embeddings(x, config, plda=plda), cluster_embeddings(x.copy(), config, plda=plda))
    assert cluster_embeddings(x[:0], config, plda=plda).size == 0
    assert list(cluster_embeddings(x[:1], config, plda=plda)) == [0]


def test_nmesc_on_long_recordings_clusters_a_subsample_and_labels_all() -> None:
    x, truth = conversation(np.random.default_rng(3), [500, 300, 200])
    config = OfflineClusteringConfig(algorithm="nme-sc")
    labels = cluster_embeddings(x, config)
    assert len(labels) == 1000 and len(np.unique(labels)) == 3
    assert purity(labels, truth) >= 0.95


def test_vbx_methods_refuse_to_run_without_plda() -> None:
    x, _ = conversation(np.random.default_rng(2), [20, 20])
    for method in ("vbx", "ahc-vbx"):
        with pytest.raises(PLDAError, match="PLDA"):
            cluster_embeddings(x, OfflineClusteringConfig(algorithm=method))


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="algorithm"):
        OfflineClusteringConfig(algorithm="kmeans")


def test_plda_space_whitens_within_speaker_and_scores_same_above_different(plda: PLDA) -> None:
    rng = np.random.default_rng(9)
    x, truth = conversation(rng, [60] * 6)
    f = plda.features(x)
    means = np.stack([f[truth == s].mean(axis=0) for s in range(6)])
    within = (f - means[truth]).var(axis=0).mean()
    assert 0.5 < within < 2.0  # identity within speakers, up to the test speakers' own spread
    assert np.all(np.diff(plda.psi) <= 0) and np.all(plda.psi > 0)
    scores = plda_scores(f, f, plda.phi())
    same = truth[:, None] == truth[None, :]
    assert scores[same].mean() > 0 > scores[~same].mean()


def test_plda_file_round_trip(tmp_path: Path, plda: PLDA) -> None:
    path = tmp_path / "m.plda.npz"
    save_plda(path, plda)
    loaded = load_plda(path)
    for key in ("mean1", "lda", "mu", "tr", "psi"):
        assert np.array_equal(getattr(loaded, key), getattr(plda, key))


def _arrays(plda: PLDA) -> dict[str, np.ndarray]:
    return {k: getattr(plda, k).copy() for k in ("mean1", "lda", "mu", "tr", "psi")}


@pytest.mark.parametrize(
    "corrupt",
    ["missing", "truncated", "not-npz", "nan", "wrong-shape", "negative-psi", "no-key", "object-array", "int-array"],
)
def test_load_plda_refuses_corrupt_files(tmp_path: Path, plda: PLDA, corrupt: str) -> None:
    path = tmp_path / "m.plda.npz"
    arrays = _arrays(plda)
    if corrupt == "nan":
        arrays["tr"][0, 0] = np.nan
    elif corrupt == "wrong-shape":
        arrays["mu"] = arrays["mu"][:-1]
    elif corrupt == "negative-psi":
        arrays["psi"][-1] = -1.0
    elif corrupt == "no-key":
        del arrays["lda"]
    elif corrupt == "int-array":
        arrays["mean1"] = np.zeros(arrays["mean1"].shape, dtype=np.int64)
    if corrupt == "object-array":
        np.savez(path, **{**arrays, "psi": np.array([None] * len(arrays["psi"]), dtype=object)})  # type: ignore[arg-type]
    elif corrupt != "missing":
        np.savez(path, **arrays)  # type: ignore[arg-type]
    if corrupt == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif corrupt == "not-npz":
        path.write_text("not a numpy archive")
    with pytest.raises(PLDAError):
        load_plda(path)


@pytest.mark.parametrize("sizes", [[60], [40, 40], [60, 30, 30, 30], [120, 15, 15]])
def test_online_plda_scoring_counts_speakers_as_they_come(sizes: list[int], plda: PLDA) -> None:
    from voiceflow.clustering.online import OnlineClusterer, OnlineClusteringConfig

    x, truth = conversation(np.random.default_rng(50 + len(sizes)), sizes)
    clusterer = OnlineClusterer(OnlineClusteringConfig(scoring="plda", confirm_windows=2), plda)
    labels = np.array([clusterer.assign(e) for e in x], dtype=object)
    decided = np.array([lab is not None for lab in labels])
    assert clusterer.num_speakers == len(sizes)
    assert decided.mean() > 0.9  # only the first windows of a new voice wait for confirmation
    assert purity(labels[decided].astype(int), truth[decided]) >= 0.95


def test_online_plda_scoring_needs_a_plda() -> None:
    from voiceflow.clustering.online import OnlineClusterer, OnlineClusteringConfig

    with pytest.raises(PLDAError, match="PLDA"):
        OnlineClusterer(OnlineClusteringConfig(scoring="plda"))
    with pytest.raises(ValueError, match="scoring"):
        OnlineClusteringConfig(scoring="euclid")


ELBO = OfflineClusteringConfig(algorithm="vbx", vbx=VBxConfig(select_by_elbo=True, fb=5.0, max_evidence_windows=600))


@pytest.mark.parametrize("case", sorted(CASES))
def test_vbx_count_by_elbo_recovers_count_and_speakers(case: str, plda: PLDA) -> None:
    sizes = CASES[case]
    x, truth = conversation(np.random.default_rng(1000 + len(sizes) * 7 + sizes[0]), sizes)
    labels = cluster_embeddings(x, ELBO, plda=plda)
    assert len(np.unique(labels)) == len(sizes)
    assert purity(labels, truth) >= 0.95 and purity(truth, labels) >= 0.95


def test_vbx_evidence_cap_weighs_a_long_recording_as_a_shorter_one(plda: PLDA) -> None:
    from voiceflow.clustering.vbx import initial_gamma, vbx

    x, truth = conversation(np.random.default_rng(21), [900, 900])
    features = plda.features(x)
    start = initial_gamma(truth, 7.0)
    capped = VBxConfig(max_evidence_windows=600, max_iters=1)
    scaled = VBxConfig(fa=0.3 * 600 / 1800, max_iters=1, max_evidence_windows=None)
    # capping at 600 windows is running with fa scaled by 600 / N
    assert np.allclose(vbx(features, plda.phi(), start, capped)[2], vbx(features, plda.phi(), start, scaled)[2])
    with pytest.raises(ValueError, match="max_evidence_windows"):
        VBxConfig(max_evidence_windows=0)


@pytest.mark.parametrize("loop_p", [0.0, 0.5, 0.99])
def test_forward_backward_matches_the_textbook_recursion(loop_p: float) -> None:
    from scipy.special import logsumexp

    from voiceflow.clustering.vbx import forward_backward

    rng = np.random.default_rng(4)
    t_len, k = 30, 4
    log_lik = rng.normal(scale=3.0, size=(t_len, k))
    pi = rng.dirichlet(np.ones(k))
    log_tr = np.log(loop_p * np.eye(k) + (1 - loop_p) * pi[None, :])
    fw = np.empty((t_len, k))
    bw = np.zeros((t_len, k))
    fw[0] = log_lik[0] + np.log(pi)
    for t in range(1, t_len):
        fw[t] = log_lik[t] + logsumexp(fw[t - 1][:, None] + log_tr, axis=0)
    for t in range(t_len - 2, -1, -1):
        bw[t] = logsumexp(log_tr + log_lik[t + 1] + bw[t + 1], axis=1)
    total = logsumexp(fw[-1])
    gamma, log_px, _ = forward_backward(log_lik, pi, loop_p)
    assert log_px == pytest.approx(total)
    assert np.allclose(gamma, np.exp(fw + bw - total))


def plain_forward_backward(log_lik: np.ndarray, pi: np.ndarray, loop_p: float) -> tuple[np.ndarray, float, np.ndarray]:
    """The scaled recursions as plain numpy expressions (the engine's before it ran them in place)."""
    t_len, k = log_lik.shape
    peak = log_lik.max(axis=1, keepdims=True)
    lik = np.exp(log_lik - peak)
    alpha, scale = np.empty((t_len, k)), np.empty(t_len)
    a = pi * lik[0]
    scale[0] = a.sum()
    alpha[0] = a / scale[0]
    stay, jump = loop_p, (1.0 - loop_p) * pi
    for t in range(1, t_len):
        a = lik[t] * (stay * alpha[t - 1] + jump)
        scale[t] = a.sum()
        alpha[t] = a / scale[t]
    beta = np.empty((t_len, k))
    beta[-1] = 1.0
    switch = np.zeros(k)
    for t in range(t_len - 1, 0, -1):
        weighted = lik[t] * beta[t]
        switch += jump * weighted / scale[t]
        beta[t - 1] = (stay * weighted + jump @ weighted) / scale[t]
    gamma = alpha * beta
    gamma /= gamma.sum(axis=1, keepdims=True)
    return gamma, float(np.sum(np.log(scale)) + np.sum(peak)), switch


@pytest.mark.parametrize("loop_p", [0.0, 0.5, 0.99, 0.999999])
def test_forward_backward_in_blocks_equals_the_plain_recursion(loop_p: float) -> None:
    """The blocked recursions must give the step-by-step ones' values (VBx's count and labels, and
    so every RTTM, depend on them): lengths around the block sizes, one to ten speakers, and
    likelihoods from mild to extreme (a speaker whose prior is nearly zero included)."""
    from voiceflow.clustering.vbx import forward_backward

    rng = np.random.default_rng(7)
    for t_len in (1, 2, 3, 9, 10, 17, 400, 1565):
        for k in (1, 2, 3, 7, 10):
            for spread in (3.0, 30.0, 1000.0):
                log_lik = rng.normal(scale=spread, size=(t_len, k))
                pi = rng.dirichlet(np.ones(k))
                if k > 1:
                    pi[0] = 1e-12
                    pi /= pi.sum()
                gamma, log_px, switch = forward_backward(log_lik, pi, loop_p)
                want_gamma, want_log_px, want_switch = plain_forward_backward(log_lik, pi, loop_p)
                assert np.abs(gamma - want_gamma).max() < 1e-12
                assert log_px == pytest.approx(want_log_px, rel=1e-12, abs=1e-9)
                assert np.abs(switch - want_switch).max() <= 1e-12 * max(1.0, np.abs(want_switch).max())
                assert np.array_equal(gamma.argmax(axis=1), want_gamma.argmax(axis=1)) or k == 1
