"""Streaming: today's online clusterer against PLDA-scored new-speaker decisions, per stratum.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python research/clustering_comparison.py --mode streaming \
        --methods "online plda" --out research/results/clustering
    .venv/bin/python research/streaming_comparison.py BASELINE.json research/results/clustering/dev-streaming.json

BASELINE.json is a `voiceflow evaluate --suite dev --streaming --json-out` run (its "default"
streaming rows: today's cosine clusterer); the second file is the comparison script's output.
A streaming run re-embeds every window as it arrives (nothing is cached), ~8 min per system on
two idle cores, which is why the baseline is read from the suite run rather than recomputed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pipelines.evaluation.suite.report import der_table, detail_table, summarise


def main(baseline_path: str, plda_path: str) -> None:
    baseline = json.loads(Path(baseline_path).read_text())["rows"]["streaming"]["default"]
    plda = json.loads(Path(plda_path).read_text())["methods"]["online plda"]["rows"]
    assert sorted(r["uri"] for r in baseline) == sorted(r["uri"] for r in plda), "not the same recordings"
    summaries = {"online cosine (today)": summarise(baseline), "online plda": summarise(plda)}
    print(der_table(summaries, list(summaries)))
    for name, summary in summaries.items():
        print(f"\n#### streaming, {name}\n\n" + detail_table(summary))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
