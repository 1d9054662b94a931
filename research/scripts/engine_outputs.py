"""Every pipeline's segments, offline and streaming, on fixed files: diff two trees' outputs.

    VOICEFLOW_MODEL_STORE=/tmp/empty OPENBLAS_NUM_THREADS=1 \
        .venv/bin/python research/scripts/engine_outputs.py > new.txt
    (cd old-checkout && VOICEFLOW_MODEL_STORE=/tmp/empty OPENBLAS_NUM_THREADS=1 PYTHONPATH=. \
        /path/to/.venv/bin/python /path/to/engine_outputs.py > old.txt); cmp old.txt new.txt

Identical files mean identical DER on anything scored with these pipelines. Used to check the
architecture restructuring of issue 23 (the tree at d11c717 against its result): identical.
"""

from __future__ import annotations

import sys
from pathlib import Path

import voiceflow
from voiceflow.audio import load_audio
from voiceflow.config import EngineConfig
from voiceflow.embedding import EmbeddingModel
from voiceflow.selection import load_segmentation_model, make_offline_diarizer, make_streaming_session

AMI = Path(__file__).resolve().parents[3] / "shared" / "data" / "ami-excerpts"


def main() -> None:
    print("engine from", voiceflow.__file__, file=sys.stderr)
    files = [Path(voiceflow.__file__).parent / "samples" / "conversation.wav"]
    files += [AMI / f"{name}.wav" for name in ("dev00", "dev01", "trn03")]
    model = EmbeddingModel.load(None)
    print("model", model.version)
    for pipeline in ("embedding", "embedding-overlap", "segmentation"):
        config = EngineConfig(pipeline=pipeline)
        network = load_segmentation_model(config)
        diarizer = make_offline_diarizer(config, model, network)
        for path in files:
            audio = load_audio(path)
            for seg in diarizer.diarize(audio):
                print(pipeline, "offline", path.stem, f"{seg.start:.3f} {seg.end:.3f} {seg.speaker}")
            session = make_streaming_session(config, model, segmentation_model=network)
            for start in range(0, len(audio), 8000):  # the fixed feed, as old and new trees both take it
                session.feed(audio[start : start + 8000])
            for seg in session.finish():
                print(pipeline, "streaming", path.stem, f"{seg.start:.3f} {seg.end:.3f} {seg.speaker}")


if __name__ == "__main__":
    main()
