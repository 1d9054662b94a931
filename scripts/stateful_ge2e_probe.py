"""Could GE2E read each frame fewer times than once per window? A feasibility measurement.

    .venv/bin/python scripts/stateful_ge2e_probe.py [--streams K ...]

The engine embeds 1.6 s windows every 0.2 s, so GE2E's LSTM reads every 10 ms frame eight times.
Two cheaper ways to read a recording, both measured here on the dev sets against the windowed
embeddings of the same windows (mean cosine) and by the DER of the engine's clustering on them:

- `--streams 0`: one stream, state never reset; embedding read at each window's end (~8x fewer
  LSTM steps per window).
- `--streams K` (K >= 2): K streams, each reset every R = 1.6 K / (K - 1) s, staggered by R / K,
  i.e. GE2E run over segments of R s starting every R / K s. A window is read off the per-frame
  output of the latest segment starting >= 1.6 s before its end, so it sees its own 1.6 s plus
  less than R / K s before it: every frame is read K times instead of 8 (8/K x fewer LSTM
  row-steps per window). Each segment normalises its own volume, as GE2E's front end does per input.
Needs ../shared and torch (docs/pipelines.md, "The recurrent student").
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from pipelines.nn.ge2e import GE2EEncoder, WaveformEmbedder
from voiceflow.clustering.offline import cluster_embeddings
from voiceflow.evaluation import evaluate_sets, load_dev_sets
from voiceflow.pipeline import FRAME_SECONDS, Diarizer, absorb_short_turns, assign_frames, plan_windows, window_samples
from voiceflow.segments import Segment, frames_to_segments

SAMPLE_RATE = 16000
MEL_HOP_SAMPLES = 160  # GE2E's 10 ms frames
VAD_FRAME_SAMPLES = round(FRAME_SECONDS * SAMPLE_RATE)
WINDOW_SECONDS = 1.6


def stateful_embeddings(model: WaveformEmbedder, encoder: GE2EEncoder, audio: np.ndarray) -> np.ndarray:
    """One embedding per 10 ms frame: GE2E's head on its last LSTM layer, state never reset."""
    with torch.no_grad():
        sequence, _ = encoder.lstm(model.frontend(torch.from_numpy(audio[None].astype(np.float32))))
        raw = torch.relu(encoder.linear(sequence[0]))
        return (raw / raw.norm(dim=1, keepdim=True).clamp(min=1e-12)).numpy()


def serving_segment_starts(ends: np.ndarray, streams: int) -> np.ndarray:
    """For window ends (samples), the start of the segment each is read from (K staggered streams).

    Streams reset every R = 1.6 K / (K - 1) s, staggered by R / K: together, a segment of length R
    starts every R / K s, and a window is read from the latest one starting >= 1.6 s before its end.
    """
    hop = round(WINDOW_SECONDS * SAMPLE_RATE / (streams - 1))
    latest = np.maximum(ends - round(WINDOW_SECONDS * SAMPLE_RATE), 0)
    return (latest // hop) * hop


def staggered_embeddings(
    model: WaveformEmbedder, encoder: GE2EEncoder, audio: np.ndarray, ends: np.ndarray, streams: int
) -> np.ndarray:
    """Each window's embedding read off the per-frame output of its serving segment."""
    length = round(WINDOW_SECONDS * SAMPLE_RATE * streams / (streams - 1))
    starts = serving_segment_starts(ends, streams)
    out = np.zeros((len(ends), 256), dtype=np.float32)
    for start in np.unique(starts):
        segment = audio[start : start + length]
        per_frame = stateful_embeddings(model, encoder, segment)
        mine = np.flatnonzero(starts == start)
        out[mine] = per_frame[np.minimum((ends[mine] - start) // MEL_HOP_SAMPLES, len(per_frame) - 1)]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[0], help="0 = one never-reset stream")
    parser.add_argument(
        "--checkpoint", help="model.pt of scripts/staggered_finetune.py to read the streams with (default: GE2E's "
        "own weights); the windowed reference is always the bundled GE2E"
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    encoder = GE2EEncoder.pretrained()
    if args.checkpoint:
        encoder.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=False)["encoder"])
    model = WaveformEmbedder(encoder, stft="conv").eval()
    diarizer = Diarizer()
    reader = args.checkpoint or "GE2E"
    sets = load_dev_sets()
    for streams in args.streams:
        if streams == 1 or streams < 0:
            parser.error("--streams is 0 or at least 2")
        cosines: dict[str, list[float]] = {}

        def diarize(
            audio: np.ndarray, set_name: str, streams: int = streams, cosines: dict[str, list[float]] = cosines
        ) -> list[Segment]:
            mask = diarizer.speech_mask(audio)
            plan = plan_windows(mask, diarizer.config)
            if len(plan.starts) == 0:
                return []
            window = window_samples(audio, plan)
            ends = np.minimum((plan.starts + plan.frames_per_window) * VAD_FRAME_SAMPLES, len(audio))
            if streams == 0:
                per_frame = stateful_embeddings(model, encoder, audio)
                embeddings = per_frame[np.minimum(ends // MEL_HOP_SAMPLES - 1, len(per_frame) - 1)]
            else:
                embeddings = staggered_embeddings(model, encoder, audio, ends, streams)
            windowed = diarizer.embedding_model.embed_batched(window)
            cosines.setdefault(set_name, []).append(float(np.mean(np.sum(windowed * embeddings, axis=1))))
            labels = cluster_embeddings(embeddings, diarizer.config.clustering)
            frame_labels = assign_frames(mask, plan, labels, int(labels.max()) + 1)
            frame_labels = absorb_short_turns(frame_labels, round(diarizer.config.min_turn_seconds / FRAME_SECONDS))
            return frames_to_segments(frame_labels, FRAME_SECONDS)

        label = "one never-reset stream" if streams == 0 else f"{streams} staggered streams ({reader})"
        for name, items in sets.items():

            def diarize_set(audio: np.ndarray, _count: int, set_name: str = name) -> list[Segment]:
                return diarize(audio, set_name)

            row = evaluate_sets({name: items}, diarize_set)[name].row()
            print(
                f"{label}: {name} DER {row['der']:.2%} (collar 0.25: {row['der_collar_0.25']:.2%}); "
                f"cosine to the windowed GE2E per recording {np.round(cosines[name], 3).tolist()}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
