"""The `voiceflow simulate` command: write simulated conversations (WAV + RTTM + UEM)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.simulation import build_dev_conversations
from voiceflow import SAMPLE_RATE
from voiceflow.audio import write_wav
from voiceflow.rttm import segments_to_rttm


def run_simulate(args: argparse.Namespace) -> int:
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for conv in build_dev_conversations(Path(args.librispeech), count=args.count, seed=args.seed):
        wav, rttm, uem = (out / f"{conv.uri}{suffix}" for suffix in (".wav", ".rttm", ".uem"))
        write_wav(wav, conv.audio)
        rttm.write_text(segments_to_rttm(conv.reference, conv.uri))
        uem.write_text(f"{conv.uri} NA 0.000 {len(conv.audio) / SAMPLE_RATE:.3f}\n")
        seconds = len(conv.audio) / SAMPLE_RATE
        print(f"wrote {wav}, {rttm}, {uem}: {seconds:.1f} s, speakers {', '.join(conv.speakers)}")
    return 0
