"""Recompute a bundled model's background mean from training audio and reseal its bundle.

    python scripts/background_mean.py [--model voiceflow/models/ge2e.onnx] [--data ../shared/data]

Exported students get theirs from `voiceflow export`; this is for a model file made elsewhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pipelines.export.background import background_mean, training_sources
from pipelines.paths import shared_data_dir
from pipelines.training.config import DataConfig
from voiceflow.bundle import index_path, write_index
from voiceflow.embedding import DEFAULT_MODEL, EmbeddingModel, background_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="the model's .onnx file")
    parser.add_argument("--data", default=str(shared_data_dir()), help="folder with ami-excerpts/ and LibriSpeech")
    args = parser.parse_args()
    model_path = Path(args.model)
    # Unsealed and without its old mean, the model loads as the bare file the mean is computed with.
    background_path(model_path).unlink(missing_ok=True)
    index_path(model_path).unlink(missing_ok=True)
    model = EmbeddingModel.load(model_path)
    data = DataConfig()  # the training recipe's own folders and AMI train excerpts
    meetings, speakers = training_sources(Path(args.data), data.ami_files, data.librispeech, data.ami)
    mean = background_mean(model, meetings, speakers)
    np.save(background_path(model_path), mean)
    bundle = write_index(model_path)
    print(f"wrote {background_path(model_path)} (norm {np.linalg.norm(mean):.3f}); bundle {bundle.digest[:12]}")


if __name__ == "__main__":
    main()
