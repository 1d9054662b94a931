"""Could GE2E read each frame once instead of once per window? A feasibility measurement.

    .venv/bin/python scripts/stateful_ge2e_probe.py

The engine embeds 1.6 s windows every 0.2 s, so GE2E's LSTM reads every 10 ms frame eight times.
A stateful model that reads the recording once and emits an embedding at each window's end would
be ~8x cheaper per window. This runs the pretrained GE2E that way (state carried through the whole
recording, embedding read at the frame where each of the engine's windows ends) and prints, on the
dev sets, the mean cosine to the windowed embeddings of the same windows and the DER of the
engine's clustering on them. Far from the windowed model = it would need training to forget
beyond 1.6 s (docs/pipelines.md, "The recurrent student"). Needs ../shared and torch.
"""

from __future__ import annotations

import numpy as np
import torch

from pipelines.nn.ge2e import GE2EEncoder, WaveformEmbedder
from voiceflow.clustering.offline import cluster_embeddings
from voiceflow.evaluation import evaluate_sets, load_dev_sets
from voiceflow.pipeline import FRAME_SECONDS, Diarizer, absorb_short_turns, assign_frames, plan_windows, window_samples
from voiceflow.segments import Segment, frames_to_segments

MEL_HOP_SAMPLES = 160  # GE2E's 10 ms frames
VAD_FRAME_SAMPLES = round(FRAME_SECONDS * 16000)


def stateful_embeddings(model: WaveformEmbedder, encoder: GE2EEncoder, audio: np.ndarray) -> np.ndarray:
    """One embedding per 10 ms frame: GE2E's head on its last LSTM layer, state never reset."""
    with torch.no_grad():
        sequence, _ = encoder.lstm(model.frontend(torch.from_numpy(audio[None].astype(np.float32))))
        raw = torch.relu(encoder.linear(sequence[0]))
        return (raw / raw.norm(dim=1, keepdim=True).clamp(min=1e-12)).numpy()


def main() -> int:
    torch.set_num_threads(2)
    encoder = GE2EEncoder.pretrained()
    model = WaveformEmbedder(encoder, stft="conv").eval()
    diarizer = Diarizer()
    cosines: dict[str, list[float]] = {}

    def diarize(audio: np.ndarray, set_name: str) -> list[Segment]:
        mask = diarizer.speech_mask(audio)
        plan = plan_windows(mask, diarizer.config)
        if len(plan.starts) == 0:
            return []
        per_frame = stateful_embeddings(model, encoder, audio)
        window_end = (plan.starts + plan.frames_per_window) * VAD_FRAME_SAMPLES // MEL_HOP_SAMPLES - 1
        embeddings = per_frame[np.minimum(window_end, len(per_frame) - 1)]
        windowed = diarizer.embedding_model.embed_batched(window_samples(audio, plan))
        cosines.setdefault(set_name, []).append(float(np.mean(np.sum(windowed * embeddings, axis=1))))
        labels = cluster_embeddings(embeddings, diarizer.config.clustering)
        frame_labels = assign_frames(mask, plan, labels, int(labels.max()) + 1)
        frame_labels = absorb_short_turns(frame_labels, round(diarizer.config.min_turn_seconds / FRAME_SECONDS))
        return frames_to_segments(frame_labels, FRAME_SECONDS)

    for name, items in load_dev_sets().items():

        def diarize_set(audio: np.ndarray, _count: int, set_name: str = name) -> list[Segment]:
            return diarize(audio, set_name)

        score = evaluate_sets({name: items}, diarize_set)[name]
        row = score.row()
        print(
            f"{name}: DER {row['der']:.2%} (collar 0.25: {row['der_collar_0.25']:.2%}); "
            f"cosine to the windowed GE2E per recording {np.round(cosines[name], 3).tolist()}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
