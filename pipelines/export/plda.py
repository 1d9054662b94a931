"""The exported embedding model's PLDA, built at export time and sealed into its bundle.

Why at export: the engine's default clustering (`auto`) runs VBx only when the model's bundle has a
PLDA (`X.plda.npz`) and falls back to AHC otherwise. A candidate exported without one is gated as
an AHC system against a VBx baseline: the gate would then measure the clustering, not the model.
The PLDA is fitted on the *exported* model's embeddings (the reading it is served with, INT8
included), from the LibriSpeech training speakers only (`pipelines.clustering.build_plda`).

When that audio is not at hand the export still succeeds: the model's metadata records that it has
no PLDA, why, and that the engine will cluster it with AHC (the metadata travels into every
manifest), and the command says so. Kept out of `pipelines.export.checkpoint`, which the
evaluation package imports: the evaluation and clustering entry points stay independent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.clustering.build_plda import PLDADataError, build_model_plda, missing_training_data, write_model_plda
from voiceflow.bundle import index_path, write_index
from voiceflow.clustering.plda import plda_path
from voiceflow.embedding import EmbeddingModel

METADATA_KEY = "plda"


def checkpoint_data_root(training_config: dict[str, Any]) -> Path:
    """Where the checkpoint's training audio is (its config's data root, else the shared data)."""
    from pipelines.training.config import DataConfig, build_config

    return build_config(DataConfig, dict(training_config.get("data", {})), "data").root()


def build_plda_record(model_path: Path, data: Path, seed: int = 0) -> dict[str, Any]:
    """Build `model_path`'s PLDA (X.plda.npz) from the training audio under `data` when it is there;
    what happened, as the metadata records it."""
    plda_path(model_path).unlink(missing_ok=True)  # never pass on another model's PLDA
    reason = missing_training_data(data)
    if reason is None:
        try:
            plda, summary = build_model_plda(EmbeddingModel.load(model_path), data, seed)
        except PLDADataError as exc:  # the files vanished or held too little audio
            reason = str(exc)
        else:
            write_model_plda(model_path, plda)
            return {"built": True, "clustering": "vbx", **summary}
    return {
        "built": False,
        "clustering": "ahc",
        "reason": f"{reason}: the engine clusters this model with AHC until "
        f"`python -m pipelines.clustering.build_plda --model {model_path}` builds its PLDA",
    }


def export_plda(model_path: Path, data: Path, seed: int = 0) -> dict[str, Any]:
    """`build_plda_record`, recorded in the model's metadata JSON, the bundle resealed when sealed."""
    model_path = Path(model_path)
    record = build_plda_record(model_path, Path(data), seed)
    meta_path = model_path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    meta[METADATA_KEY] = record
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    if index_path(model_path).is_file():
        write_index(model_path)
    return record
