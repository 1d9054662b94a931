"""The PLDA back-end at run time: x-vector -> LDA -> length norm -> PLDA space, and its file.

A model `X.onnx` may ship `X.plda.npz` beside it (built offline from training speakers only by
`python -m pipelines.clustering.build_plda`). In PLDA space the within-speaker covariance is the
identity and the across-speaker covariance is diag(`psi`), which is what VBx's generative model
and the closed-form verification score below assume (two-covariance PLDA).

Arrays in the file (D: embedding dimension, d: LDA dimension):
    mean1 [D]   training mean of the model's embeddings, removed first
    lda   [D,d] LDA projection
    mu    [d]   training mean after LDA and length norm
    tr    [d,d] rows diagonalise the covariances: tr W tr' = I, tr B tr' = diag(psi)
    psi   [d]   across-speaker variances in that basis, descending, > 0
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voiceflow.embedding import EmbeddingModel, l2_normalize

PLDA_KEYS = ("mean1", "lda", "mu", "tr", "psi")


class PLDAError(ValueError):
    """A PLDA file that is missing, unreadable or inconsistent (shapes, non-finite values)."""


@dataclass(frozen=True)
class PLDA:
    mean1: np.ndarray
    lda: np.ndarray
    mu: np.ndarray
    tr: np.ndarray
    psi: np.ndarray

    def __post_init__(self) -> None:
        check_plda_arrays({k: getattr(self, k) for k in PLDA_KEYS}, "PLDA")

    @property
    def input_dim(self) -> int:
        return int(self.lda.shape[0])

    @property
    def dim(self) -> int:
        return int(self.lda.shape[1])

    def project(self, embeddings: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
        """Embeddings [N, D] -> LDA space [N, d], each length-normalised to sqrt(d).

        `mean` replaces the training mean (e.g. the recording's own mean, which also removes what
        every window of one recording shares: its channel)."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"PLDA expects embeddings [N, {self.input_dim}], got {x.shape}")
        centred = l2_normalize(x - (self.mean1 if mean is None else mean)) * np.sqrt(self.input_dim)
        return l2_normalize(centred @ self.lda) * np.sqrt(self.dim)

    def features(self, embeddings: np.ndarray, dim: int | None = None, mean: np.ndarray | None = None) -> np.ndarray:
        """[N, dim] in PLDA space (identity within, diag(psi) across), first `dim` dimensions."""
        dim = self.dim if dim is None else min(dim, self.dim)
        return ((self.project(embeddings, mean) - self.mu) @ self.tr.T)[:, :dim]

    def phi(self, dim: int | None = None) -> np.ndarray:
        return self.psi[: self.dim if dim is None else min(dim, self.dim)]


def plda_scores(a: np.ndarray, b: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """[Na, Nb] log-likelihood ratios same-speaker vs different-speaker for PLDA-space vectors
    (two-covariance model with identity within-class and diag(psi) across-class covariance)."""
    total = 1.0 / (1.0 + psi)
    two = 1.0 / (1.0 + 2.0 * psi)
    gamma = -0.25 * (two + 1.0 - 2.0 * total)
    lam = -0.5 * (two - 1.0)
    const = -0.5 * (np.sum(np.log1p(2.0 * psi)) - 2.0 * np.sum(np.log1p(psi)))
    return (a * lam) @ b.T + ((a**2) @ gamma)[:, None] + ((b**2) @ gamma)[None, :] + const


def check_plda_arrays(arrays: dict[str, np.ndarray], where: str) -> None:
    """Raise PLDAError unless the arrays form one consistent, finite PLDA."""
    missing = [k for k in PLDA_KEYS if k not in arrays]
    if missing:
        raise PLDAError(f"{where}: missing array(s) {', '.join(missing)}")
    mean1, lda, mu, tr, psi = (np.asarray(arrays[k]) for k in PLDA_KEYS)
    if lda.ndim != 2 or not 1 <= lda.shape[1] <= lda.shape[0]:
        raise PLDAError(f"{where}: lda must be [D, d] with 1 <= d <= D, got shape {lda.shape}")
    big, small = lda.shape
    expected = {"mean1": (big,), "mu": (small,), "tr": (small, small), "psi": (small,)}
    for key, shape in expected.items():
        if np.asarray(arrays[key]).shape != shape:
            raise PLDAError(f"{where}: {key} must have shape {shape}, got {np.asarray(arrays[key]).shape}")
    for key, value in zip(PLDA_KEYS, (mean1, lda, mu, tr, psi), strict=True):
        if not np.issubdtype(value.dtype, np.floating) or not np.all(np.isfinite(value)):
            raise PLDAError(f"{where}: {key} must hold finite floats")
    if not np.all(psi > 0):
        raise PLDAError(f"{where}: psi (across-speaker variances) must be positive")
    if abs(np.linalg.det(tr)) < 1e-12:
        raise PLDAError(f"{where}: tr is singular")


def plda_path(model_path: str | Path) -> Path:
    """Where model `X.onnx` keeps its PLDA: `X.plda.npz` beside it."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}.plda.npz")


def load_plda(path: str | Path) -> PLDA:
    """The PLDA in `path`, or a PLDAError saying what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise PLDAError(f"{path}: PLDA file not found (build it with python -m pipelines.clustering.build_plda)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.array(data[k]) for k in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:  # bad zip, truncated file, pickled object arrays
        raise PLDAError(f"{path}: unreadable PLDA file ({str(exc).splitlines()[0][:160]})") from exc
    check_plda_arrays(arrays, str(path))
    return PLDA(*(arrays[k].astype(np.float64) for k in PLDA_KEYS))


def save_plda(path: str | Path, plda: PLDA) -> None:
    np.savez(Path(path), **{k: getattr(plda, k).astype(np.float64) for k in PLDA_KEYS})


def model_plda_path(model: EmbeddingModel) -> Path:
    return (model.bundle.part("plda") if model.bundle is not None else None) or plda_path(model.path)


def optional_model_plda(model: EmbeddingModel) -> PLDA | None:
    """`model`'s PLDA when it has one (None when no file is there; a corrupt one is still an error)."""
    return model_plda(model) if model_plda_path(model).is_file() else None


def model_plda(model: EmbeddingModel) -> PLDA:
    """The PLDA of `model`'s bundle (X.plda.npz beside X.onnx), checked against its embedding size."""
    path = model_plda_path(model)
    try:
        plda = load_plda(path)
    except PLDAError as exc:
        raise PLDAError(f"the clustering algorithm needs {model.path.name}'s PLDA: {exc}") from exc
    if plda.input_dim != model.dimension:
        raise PLDAError(f"{path}: PLDA is for {plda.input_dim}-d embeddings, the model gives {model.dimension}-d")
    return plda
