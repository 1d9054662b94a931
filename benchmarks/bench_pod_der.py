"""Streaming DER through the pod vs the engine's own streaming session vs offline diarization.

Each AMI excerpt is streamed to a real pod over loopback (binary pcm_f32le frames, unpaced) and
the `final` message is scored; beside it the same file through `StreamingSession` run directly
(`voiceflow diarize --streaming`'s own function) and the offline `Diarizer`. Scored with pyannote.metrics
(collar 0 with overlap, and collar 0.25) on the UEM regions.

    .venv/bin/python benchmarks/bench_pod_der.py                 # dev00, dev01
    .venv/bin/python benchmarks/bench_pod_der.py --set all       # + trn00-trn09
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pod_process import start_pod as start_pod_process  # noqa: E402

sys.path.insert(0, str(ROOT))

AMI = ROOT.parent / "shared" / "data" / "ami-excerpts"


def start_pod() -> tuple[subprocess.Popen[bytes], str]:
    return start_pod_process({"VOICEFLOW_MAX_REALTIME_FACTOR": "1000", "VOICEFLOW_REALTIME_BURST_SECONDS": "600"})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=["dev", "all"], default="dev")
    args = ap.parse_args()

    from inference_pod.client import stream_samples
    from voiceflow.audio import load_audio
    from voiceflow.config import EngineConfig
    from voiceflow.embedding import EmbeddingModel
    from voiceflow.pipeline import Diarizer
    from voiceflow.rttm import read_rttm, read_uem
    from voiceflow.scoring import score_der
    from voiceflow.segments import Segment
    from voiceflow.selection import stream_audio  # exactly what `voiceflow diarize --streaming` runs

    refs = read_rttm(AMI / "development.rttm")
    uems = read_uem(AMI / "development.uem")
    if args.set == "all":
        refs |= read_rttm(AMI / "train.rttm")
        uems |= read_uem(AMI / "train.uem")
    model = EmbeddingModel.load()
    offline = Diarizer(embedding_model=model)
    hyps: dict[str, dict[str, list[Segment]]] = {"pod streaming": {}, "CLI --streaming": {}, "offline": {}}
    proc, url = start_pod()
    try:
        for uri in sorted(refs):
            audio = load_audio(AMI / f"{uri}.wav")
            outcome = asyncio.run(stream_samples(audio, url, speed=0, chunk_seconds=0.1))
            if outcome.final is None:
                raise SystemExit(f"{uri}: no final from the pod: {outcome.errors}")
            hyps["pod streaming"][uri] = [Segment(s["start"], s["end"], s["speaker"], True) for s in outcome.final]
            hyps["CLI --streaming"][uri] = stream_audio(audio, model, EngineConfig())
            hyps["offline"][uri] = offline.diarize(audio)
            same = hyps["pod streaming"][uri] == [
                Segment(s.start, s.end, s.speaker, True) for s in hyps["CLI --streaming"][uri]
            ]
            print(f"{uri}: pod final == CLI --streaming: {same}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print(f"\n{'system':<18} {'files':>5} {'DER c0':>8} {'DER c.25':>8}")
    for system, h in hyps.items():
        c0 = score_der(refs, h, uems, collar=0.0).der
        c25 = score_der(refs, h, uems, collar=0.25).der
        print(f"{system:<18} {len(h):>5} {100 * c0:>7.2f}% {100 * c25:>7.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
