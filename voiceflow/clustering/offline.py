"""Offline clustering of window embeddings with an automatic speaker count.

`OfflineClusteringConfig.algorithm` picks the method (one selection point for the engine, the CLI
config and the evaluation suite):
* "auto" (the default): "vbx" when the model has a PLDA, else "ahc";
* "ahc" (below): centred average-linkage AHC with a merge rule (the default until the dev suite);
* "nme-sc": spectral clustering, count by the normalised maximum eigengap (clustering/spectral.py);
* "vbx": Bayesian HMM clustering over PLDA features, by default with the count chosen by the ELBO
  (clustering/vbx.py);
* "ahc-vbx": cosine AHC, VBx, centroid assignment, as pyannote 3.x (clustering/vbx.py).
The two VBx methods need the embedding model's PLDA (clustering/plda.py). The comparison that
chose the default: docs/evaluation.md, "Speaker counting and clustering".

"ahc":
1. Centre the recording's embeddings (subtract their mean): what all windows share — room,
   microphone, channel — dominates raw GE2E similarities on far-field audio (AMI: median cosine
   0.72 within a speaker vs 0.60 between speakers); centred, the two separate (0.11 vs -0.23).
2. Average-linkage agglomerative clustering on cosine distance, cut at `threshold`: deliberately
   a little over-segmented.
3. Re-assign every window to its nearest centroid (repairs average linkage's border chaining),
   absorb clusters holding less than `min_cluster_fraction` of the windows.
4. Merge clusters whose *raw* centroids are nearly identical (`merge_threshold`): centring
   makes a one-speaker recording look like noise, and this step puts it back together.
When the user knows the count (or bounds it) the dendrogram is cut at that many clusters instead.
Settings were chosen on the dev sets only (research/scripts/tune_engine.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist

from voiceflow.clustering.labels import (
    SpeakerBounds,
    centroids_of,
    count_target,
    cut_to_count,
    reassign_to_centroids,
    relabel_by_first_appearance,
)
from voiceflow.clustering.plda import PLDA, PLDAError
from voiceflow.clustering.spectral import NMESCConfig, spectral_cluster
from voiceflow.clustering.vbx import VBxConfig, ahc_vbx_cluster, vbx_cluster
from voiceflow.embedding import l2_normalize

# "auto": "vbx" when the embedding model ships a PLDA (X.plda.npz, a listed part of its bundle),
# else "ahc" — so a user's bare ONNX model, or a candidate before its PLDA is built, still runs.
AUTO = "auto"
ALGORITHMS = (AUTO, "ahc", "nme-sc", "vbx", "ahc-vbx")
PLDA_ALGORITHMS = ("vbx", "ahc-vbx")


def needs_plda(algorithm: str) -> bool:
    """Whether `algorithm` cannot run without the model's PLDA ("auto" can)."""
    return algorithm in PLDA_ALGORITHMS


def resolve_algorithm(algorithm: str, plda_available: bool) -> str:
    """The method that runs: "auto" becomes "vbx" with a PLDA and "ahc" without."""
    if algorithm != AUTO:
        return algorithm
    return "vbx" if plda_available else "ahc"


@dataclass(frozen=True)
class OfflineClusteringConfig:
    threshold: float = 0.9  # cosine distance (of centred embeddings) at which groups stop merging
    method: str = "average"
    center: bool = True
    reassign_iterations: int = 2
    min_cluster_fraction: float = 0.15  # clusters smaller than this share of windows are absorbed
    merge_threshold: float | None = 0.85  # raw-centroid cosine above which two clusters are one speaker
    # one of ALGORITHMS; the settings above are "ahc"'s. "auto" (VBx with the model's PLDA, else
    # AHC) won the dev-suite comparison (docs/evaluation.md, "Speaker counting")
    algorithm: str = AUTO
    nmesc: NMESCConfig = field(default_factory=NMESCConfig)
    vbx: VBxConfig = field(default_factory=VBxConfig)
    # pyannote 3.x runs VBx as a plain mixture (no HMM: loop_p 0) after its cosine AHC; its own
    # fa 0.07 / fb 0.8 suit one embedding per 10 s chunk, not ours (1.6 s every 0.2 s)
    ahc_vbx: VBxConfig = field(
        default_factory=lambda: VBxConfig(
            fa=0.1,
            fb=5.0,
            loop_p=0.0,
            ahc_threshold=0.7,
            select_by_elbo=False,
            max_evidence_windows=None,
            min_evidence_windows=None,
        )
    )

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"clustering algorithm must be one of {', '.join(ALGORITHMS)}, not {self.algorithm!r}")
        if not 0.0 < self.threshold < 2.0:
            raise ValueError("clustering threshold must be a cosine distance in (0, 2)")
        if self.method not in ("average", "complete", "single", "weighted"):
            raise ValueError(f"unsupported linkage method {self.method!r}")
        if self.reassign_iterations < 0:
            raise ValueError("reassign_iterations must be >= 0")
        # At 1 (or above) every cluster but one is absorbed: every recording one speaker.
        if not 0.0 <= self.min_cluster_fraction < 1.0:
            raise ValueError("min_cluster_fraction must be a fraction in [0, 1)")
        # At -1 or below (or NaN) every cluster is merged into one; above 1 nothing is (as None).
        if self.merge_threshold is not None and not -1.0 < self.merge_threshold < math.inf:
            raise ValueError("merge_threshold must be a cosine similarity above -1 (or null: no merging)")


def cluster_embeddings(
    embeddings: np.ndarray,
    config: OfflineClusteringConfig = OfflineClusteringConfig(),
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    plda: PLDA | None = None,
) -> np.ndarray:
    """Labels 0..K-1 for each row, numbered by first appearance, by `config.algorithm`."""
    bounds = SpeakerBounds(num_speakers, min_speakers, max_speakers)
    n = len(embeddings)
    if n <= 1:
        return np.zeros(n, dtype=int)
    algorithm = resolve_algorithm(config.algorithm, plda is not None)
    if algorithm == "ahc":
        return ahc_cluster(embeddings, config, bounds)
    if algorithm == "nme-sc":
        return spectral_cluster(embeddings, num_speakers, min_speakers, max_speakers, config.nmesc)
    if plda is None:
        raise PLDAError(f"clustering algorithm {algorithm!r} needs the embedding model's PLDA (X.plda.npz)")
    unit = l2_normalize(np.asarray(embeddings, dtype=np.float64))
    space = l2_normalize(unit - unit.mean(axis=0))
    if num_speakers is not None:
        # a known count needs no counting: AHC cut at it, as for the other methods
        return relabel_by_first_appearance(cut_to_count(space, min(num_speakers, n)))
    if algorithm == "vbx":
        labels = vbx_cluster(embeddings, plda, config.vbx)
    else:
        labels = ahc_vbx_cluster(embeddings, plda, config.ahc_vbx)
    target = count_target(len(np.unique(labels)), n, None, min_speakers, max_speakers)
    if target is not None:
        labels = cut_to_count(space, target)
    return relabel_by_first_appearance(labels)


def ahc_cluster(embeddings: np.ndarray, config: OfflineClusteringConfig, bounds: SpeakerBounds) -> np.ndarray:
    """Today's centred AHC with its merge rule (see the module docstring)."""
    num_speakers, min_speakers, max_speakers = bounds.num, bounds.min, bounds.max
    n = len(embeddings)
    raw = l2_normalize(np.asarray(embeddings, dtype=np.float64))
    x = l2_normalize(raw - raw.mean(axis=0)) if config.center else raw
    tree = linkage(pdist(x, metric="cosine"), method=config.method)
    if num_speakers is not None:
        labels = fcluster(tree, t=min(num_speakers, n), criterion="maxclust") - 1
        for _ in range(config.reassign_iterations):
            labels = reassign_to_centroids(x, labels)
        return relabel_by_first_appearance(labels)
    labels = fcluster(tree, t=config.threshold, criterion="distance") - 1
    for _ in range(config.reassign_iterations):
        labels = reassign_to_centroids(x, labels)
    if config.min_cluster_fraction > 0:
        labels = _absorb_small_clusters(x, labels, config.min_cluster_fraction, min_speakers or 1)
    if config.merge_threshold is not None:
        labels = merge_similar_clusters(raw, labels, config.merge_threshold, min_speakers or 1)
    k = len(np.unique(labels))
    lo, hi = min_speakers or 1, max_speakers or n
    if not lo <= k <= hi:
        labels = fcluster(tree, t=min(max(k, lo), hi, n), criterion="maxclust") - 1
    return relabel_by_first_appearance(labels)


def shift_merge_threshold(config: OfflineClusteringConfig, shift: float) -> OfflineClusteringConfig:
    """`config` on a model's own similarity scale: its merge threshold moved by the model's offset to
    GE2E's raw-centroid cosines (pipelines/export/calibration.py), for which the settings were chosen."""
    if config.merge_threshold is None or shift == 0.0:
        return config
    return replace(config, merge_threshold=config.merge_threshold + shift)


def _absorb_small_clusters(x: np.ndarray, labels: np.ndarray, fraction: float, keep_at_least: int) -> np.ndarray:
    labels = labels.copy()
    while True:
        ids, counts = np.unique(labels, return_counts=True)
        if len(ids) <= keep_at_least:
            return labels
        smallest = int(np.argmin(counts))
        if counts[smallest] >= fraction * len(labels):
            return labels
        others = ids[ids != ids[smallest]]
        _, cents = centroids_of(x[labels != ids[smallest]], labels[labels != ids[smallest]])
        members = labels == ids[smallest]
        labels[members] = others[np.argmax(x[members] @ cents.T, axis=1)]


CentroidsFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def merge_similar_clusters(
    raw: np.ndarray, labels: np.ndarray, threshold: float, keep_at_least: int = 1, centroids: CentroidsFn = centroids_of
) -> np.ndarray:
    """Merge the two clusters with the most similar centroids while their cosine is >= `threshold`.

    `centroids` (ids and L2-normalised centroids of labelled rows) lets a measurement try other
    centroids (research/scripts/merge_rule_probe.py); the engine uses the plain mean."""
    labels = labels.copy()
    while True:
        ids, cents = centroids(raw, labels)
        if len(ids) <= keep_at_least:
            return labels
        sims = cents @ cents.T
        np.fill_diagonal(sims, -np.inf)
        a, b = np.unravel_index(int(np.argmax(sims)), sims.shape)
        if sims[a, b] < threshold:
            return labels
        labels[labels == ids[b]] = ids[a]
