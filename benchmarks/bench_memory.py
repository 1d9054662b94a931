"""Peak memory of offline diarization on a long recording, per pipeline.

    .venv/bin/python benchmarks/bench_memory.py [--minutes 20] [--pipelines embedding segmentation]

Each pipeline runs in its own process (peak RSS is per process) on the bundled sample conversation
tiled to the length asked for. Prints the peak RSS, the RSS before diarizing, the ratio of the
peak to the audio's own size, and the wall time. Figures only, never asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
from dataclasses import replace
import numpy as np
from voiceflow.audio import load_audio
from voiceflow.config import EngineConfig
from voiceflow.embedding import EmbeddingModel
from voiceflow.selection import make_offline_diarizer
minutes, pipeline, sample = float(sys.argv[1]), sys.argv[2], sys.argv[3]
clip = load_audio(sample)
audio = np.tile(clip, int(np.ceil(minutes * 60 * 16000 / len(clip))))[: int(minutes * 60 * 16000)]
diarizer = make_offline_diarizer(replace(EngineConfig(), pipeline=pipeline), EmbeddingModel.load())
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
segments = diarizer.diarize(audio)
print(json.dumps({"seconds": time.perf_counter() - started, "before_kb": before,
                  "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "audio_mb": audio.nbytes / 1e6, "segments": len(segments)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--pipelines", nargs="+", default=["embedding", "segmentation"])
    args = ap.parse_args()
    sample = ROOT / "voiceflow" / "samples" / "conversation.wav"
    print(f"offline diarization of a {args.minutes:.0f}-minute recording (the bundled sample, tiled)")
    for pipeline in args.pipelines:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(args.minutes), pipeline, str(sample)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        peak, before = r["peak_kb"] / 1024, r["before_kb"] / 1024
        print(
            f"  {pipeline:<18} peak RSS {peak:7.0f} MB (models loaded: {before:5.0f} MB; "
            f"+{peak - before:5.0f} MB = {(peak - before) / r['audio_mb']:.1f}x the audio's "
            f"{r['audio_mb']:.0f} MB)  {r['seconds']:6.1f} s, RTF {r['seconds'] / (args.minutes * 60):.4f}, "
            f"{r['segments']} segments"
        )


if __name__ == "__main__":
    main()
