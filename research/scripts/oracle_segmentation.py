"""The pipelines' own accuracy, apart from the network: an oracle segmentation (the reference's local
speakers, pipelines/evaluation/oracle.py) on overlap-heavy simulated talks of held-out
LibriSpeech speakers, beside the embedding pipeline. Needs ../shared.

    .venv/bin/python research/scripts/oracle_segmentation.py

Prints DER (collar 0, overlap scored) and the missed overlap per talk and system.
"""

from __future__ import annotations

from pipelines.evaluation.oracle import OracleSegmentation
from pipelines.paths import shared_data_dir
from pipelines.simulation import SimulationConfig, build_dev_conversations
from voiceflow.config import EngineConfig
from voiceflow.embedding import EmbeddingModel
from voiceflow.scoring import score_der
from voiceflow.selection import make_offline_diarizer, stream_audio

TALK = SimulationConfig(
    min_speakers=2, max_speakers=3, duration_seconds=25.0, overlap_probability=0.8, max_overlap_seconds=2.5
)


def main() -> None:
    model = EmbeddingModel.load()
    librispeech = shared_data_dir() / "librispeech-train-clean-100"
    print(f"{'talk':<6} {'system':<36} {'DER':>7} {'missed overlap':>15}")
    for seed in (4242, 7):
        talk = build_dev_conversations(librispeech, count=1, seed=seed, config=TALK)[0]
        oracle = OracleSegmentation(talk.audio, talk.reference)
        runs = {
            "embedding offline": make_offline_diarizer(EngineConfig(), model).diarize(talk.audio),
            "embedding streaming": stream_audio(talk.audio, model, EngineConfig()),
        }
        for pipeline in ("segmentation", "embedding-overlap"):
            config = EngineConfig(pipeline=pipeline)
            runs[f"{pipeline} offline (oracle)"] = make_offline_diarizer(config, model, oracle).diarize(talk.audio)  # type: ignore[arg-type]
            runs[f"{pipeline} streaming (oracle)"] = stream_audio(talk.audio, model, config, oracle)  # type: ignore[arg-type]
        for name, hyp in runs.items():
            report = score_der({talk.uri: talk.reference}, {talk.uri: hyp})
            missed = f"{report.missed_overlap:.2f} s of {report.overlap_speech:.2f}"
            print(f"{seed:<6} {name:<36} {100 * report.der:6.2f}% {missed:>16}")


if __name__ == "__main__":
    main()
