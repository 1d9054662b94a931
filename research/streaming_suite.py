"""Streaming on the dev suite for the pipelines a default change would switch (issue 24's gate):
the engine's `pipeline` key chooses offline and streaming together, so a new default pipeline
must not make the streams worse either.

    nice -n 5 .venv/bin/python research/streaming_suite.py \
        --system seg=pipeline=segmentation [--out research/results/overlap/streaming.json]

Runs `default` and each `--system` through the suite runner in streaming mode (hypotheses cached
like `voiceflow evaluate --suite dev --streaming`), leaves out the AMI excerpts the segmentation
network trained on (as research/overlap_suite.py does), prints DER per stratum and the stratum
gate of each system against `default`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipelines.evaluation.gate import suite_gate
from pipelines.evaluation.suite.command import compact_row, context, load_items, suite_spec
from pipelines.evaluation.suite.report import der_table, summarise
from pipelines.evaluation.suite.runner import STREAMING, run_system
from pipelines.evaluation.suite.systems import BUILTIN, parse_system
from voiceflow.config import EngineConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", action="append", default=[])
    parser.add_argument("--out", default="research/results/overlap/streaming.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    from overlap_suite import trained_ami

    heard = trained_ami(EngineConfig())
    spec = suite_spec("dev")
    items = [it for it in load_items(spec) if it.recording.removeprefix("ami-") not in heard]
    ctx = context(spec)
    systems = [BUILTIN["default"], *(parse_system(s) for s in args.system)]
    rows = {s.name: run_system(s, items, STREAMING, ctx) for s in systems}
    summaries = {name: summarise(r) for name, r in rows.items()}
    print(der_table(summaries, list(rows)))
    gates = {}
    for name, r in rows.items():
        if name != "default":
            g = suite_gate([compact_row(x) for x in r], [compact_row(x) for x in rows["default"]])
            gates[name] = {"passed": g.passed, "reasons": list(g.reasons)}
            print(f"- {name}: {'PASS' if g.passed else 'FAIL'} — {'; '.join(g.reasons)}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    payload = {"left_out": sorted(heard), "summary": summaries, "gate": gates, "rows": rows}
    Path(args.out).write_text(json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
