"""Could GE2E read each frame fewer times than once per window? A feasibility measurement.

    .venv/bin/python research/scripts/stateful_ge2e_probe.py [--streams K ...]

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

from pipelines.evaluation.devsets import evaluate_sets, load_dev_sets
from pipelines.nn.frame_reader import FrameReader
from pipelines.nn.frontend import HOP_LENGTH
from pipelines.nn.ge2e import GE2EEncoder, WaveformEmbedder
from voiceflow.clustering.offline import cluster_embeddings
from voiceflow.pipeline import (
    FRAME_SECONDS,
    Diarizer,
    absorb_short_turns,
    labels_from_votes,
    plan_windows,
    window_ends,
    window_samples,
    window_votes,
)
from voiceflow.segments import Segment, frames_to_segments
from voiceflow.staggered import FramesFn, read_staggered

SAMPLE_RATE = 16000
WINDOW_SAMPLES = round(1.6 * SAMPLE_RATE)


def torch_frames(reader: FrameReader) -> FramesFn:
    def frames_of(segments: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return reader(torch.from_numpy(np.ascontiguousarray(segments, dtype=np.float32))).numpy()

    return frames_of


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[0], help="0 = one never-reset stream")
    parser.add_argument(
        "--checkpoint",
        help="model.pt of `voiceflow train --preset full` (student.streams) to read the streams with "
        "(default: GE2E's own weights); the windowed reference is always the bundled GE2E",
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    encoder = GE2EEncoder.pretrained()
    if args.checkpoint:
        encoder.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=False)["encoder"])
    frames_of = torch_frames(FrameReader(WaveformEmbedder(encoder, stft="conv")).eval())
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
            mask = diarizer.speech(audio).mask
            plan = plan_windows(mask, diarizer.config)
            if len(plan.starts) == 0:
                return []
            window = window_samples(audio, plan)
            ends = window_ends(len(audio), plan)
            if streams == 0:  # one segment: the whole recording
                per_frame = frames_of(audio[None])[0]
                embeddings = per_frame[np.minimum(ends // HOP_LENGTH, len(per_frame) - 1)]
            else:
                embeddings = read_staggered(frames_of, audio, ends, WINDOW_SAMPLES, streams, HOP_LENGTH)
            windowed = diarizer.embedding_model.embed_batched(window)
            cosines.setdefault(set_name, []).append(float(np.mean(np.sum(windowed * embeddings, axis=1))))
            labels = cluster_embeddings(embeddings, diarizer.config.clustering)
            frame_labels = labels_from_votes(mask, window_votes(len(mask), plan, labels, int(labels.max()) + 1))
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
