import numpy as np
import pytest

from voiceflow.clustering.offline import (
    OfflineClusteringConfig,
    cluster_embeddings,
    relabel_by_first_appearance,
)
from voiceflow.clustering.online import OnlineClusterer, OnlineClusteringConfig
from voiceflow.clustering.spectral import estimate_num_speakers, spectral_cluster


def blobs(k: int, per: int, dim: int = 32, spread: float = 0.15, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, dim))
    x = np.concatenate(
        [c + spread * rng.standard_normal((per, dim)) * np.linalg.norm(c) / np.sqrt(dim) for c in centres]
    )
    y = np.repeat(np.arange(k), per)
    order = rng.permutation(len(y))
    return x[order], y[order]


def purity(labels: np.ndarray, truth: np.ndarray) -> float:
    return sum(np.bincount(truth[labels == c]).max() for c in np.unique(labels)) / len(truth)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_offline_finds_the_count_without_being_told(k: int) -> None:
    x, y = blobs(k, 30, seed=k)
    labels = cluster_embeddings(x)
    assert len(np.unique(labels)) == k
    assert purity(labels, y) == 1.0


def test_offline_respects_user_counts() -> None:
    x, _ = blobs(4, 20)
    assert len(np.unique(cluster_embeddings(x, num_speakers=2))) == 2
    assert (
        len(
            np.unique(
                cluster_embeddings(x, OfflineClusteringConfig(threshold=1.9, merge_threshold=None), min_speakers=3)
            )
        )
        >= 3
    )
    assert (
        len(
            np.unique(
                cluster_embeddings(x, OfflineClusteringConfig(threshold=0.01, merge_threshold=None), max_speakers=2)
            )
        )
        <= 2
    )
    with pytest.raises(ValueError, match="greater than"):
        cluster_embeddings(x, min_speakers=3, max_speakers=2)
    with pytest.raises(ValueError, match=">= 1"):
        cluster_embeddings(x, num_speakers=0)


def test_offline_edge_sizes_and_label_order() -> None:
    assert cluster_embeddings(np.zeros((0, 4))).size == 0
    assert list(cluster_embeddings(np.ones((1, 4)))) == [0]
    assert list(relabel_by_first_appearance(np.array([5, 5, 2, 5, 9]))) == [0, 0, 1, 0, 2]


@pytest.mark.parametrize("k", [2, 3, 4])
def test_spectral_estimates_count(k: int) -> None:
    x, y = blobs(k, 40, seed=10 + k)
    assert estimate_num_speakers(x)[0] == k
    labels = spectral_cluster(x)
    assert purity(labels, y) > 0.95


def test_online_labels_are_stable_and_new_speakers_need_confirmation() -> None:
    x, y = blobs(3, 10, seed=3)
    order = np.argsort(y, kind="stable")  # speaker 0's windows, then 1's, then 2's
    clusterer = OnlineClusterer(OnlineClusteringConfig(join_threshold=0.6, confirm_windows=2))
    seen = [clusterer.assign(e) for e in x[order]]
    # The first window of each new speaker is held back (None) until a second one confirms it.
    assert seen[0] == 0 and seen[10] is None and seen[11] == 1 and seen[20] is None and seen[21] == 2
    assert clusterer.num_speakers == 3
    # Returning speakers get their old label.
    assert clusterer.assign(x[order][0]) == 0


def test_online_single_outlier_does_not_create_a_speaker() -> None:
    x, _ = blobs(2, 10, seed=4)
    clusterer = OnlineClusterer(OnlineClusteringConfig(join_threshold=0.6, confirm_windows=2))
    for e in x[:5]:
        clusterer.assign(e)
    outlier = -x[0]
    assert clusterer.assign(outlier) is None
    clusterer.assign(x[1])
    assert clusterer.num_speakers == 1


def test_online_max_speakers_bound() -> None:
    x, _ = blobs(5, 4, seed=5)
    clusterer = OnlineClusterer(OnlineClusteringConfig(join_threshold=0.99, confirm_windows=1, max_speakers=2))
    for e in x:
        clusterer.assign(e)
    assert clusterer.num_speakers == 2


def test_online_config_bounds() -> None:
    with pytest.raises(ValueError):
        OnlineClusteringConfig(join_threshold=1.5)
    with pytest.raises(ValueError):
        OnlineClusteringConfig(confirm_windows=0)
