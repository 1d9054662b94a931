"""Every stratum's paired DER difference of a suite gate run, not only the failing ones.

    .venv/bin/python research/suite_paired.py GATE.json [--markdown-out F]

GATE.json is `voiceflow evaluate --suite dev --model M --gate --json-out GATE.json`. The gate's
decision lists the strata that failed (or, when it passes, every check); this prints the whole
table: per stratum the baseline's and the candidate's pooled collar-0 DER and the paired
bootstrap 95 % interval of their difference, resampling the stratum's recordings, computed as the
gate computes it (`pipelines.evaluation.suite.stats`, same resamples and seed).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from pipelines.evaluation.suite.stats import RESAMPLES, SEED, paired_bootstrap_difference, pooled_ratio


def per_recording(rows: list[dict[str, Any]]) -> dict[str, tuple[set[str], float, float]]:
    """(tags, errors, total) per recording; phase copies of one recording are summed, as the gate does."""
    out: dict[str, tuple[set[str], float, float]] = {}
    for row in rows:
        tags, errors, total = out.get(row["recording"], (set(), 0.0, 0.0))
        out[row["recording"]] = (tags | set(row["tags"]), errors + row["errors"], total + row["total"])
    return out


def paired_table(candidate_rows: list[dict[str, Any]], baseline_rows: list[dict[str, Any]]) -> str:
    cand, base = per_recording(candidate_rows), per_recording(baseline_rows)
    uris = sorted(cand)
    strata: dict[str, list[str]] = defaultdict(list)
    for uri in uris:
        strata["pooled"].append(uri)
        for tag in cand[uri][0]:
            strata[tag].append(uri)
    lines = [
        "| stratum | n | baseline DER % | candidate DER % | difference, points [95 %] | |",
        "|---|---|---|---|---|---|",
    ]
    for name in ["pooled", *sorted(k for k in strata if k != "pooled")]:
        members = strata[name]
        c_err, b_err = [cand[u][1] for u in members], [base[u][1] for u in members]
        totals = [cand[u][2] for u in members]
        diff = paired_bootstrap_difference(c_err, b_err, totals, RESAMPLES, SEED)
        verdict = "significantly worse" if diff.low > 0 else ("significantly better" if diff.high < 0 else "")
        lines.append(
            f"| {name} | {len(members)} | {100 * pooled_ratio(b_err, totals):.1f} | "
            f"{100 * pooled_ratio(c_err, totals):.1f} | {100 * diff.point:+.2f} "
            f"[{100 * diff.low:+.2f}, {100 * diff.high:+.2f}] | {verdict} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gate_json", type=Path)
    parser.add_argument("--markdown-out", type=Path)
    args = parser.parse_args()
    report = json.loads(args.gate_json.read_text())
    table = paired_table(report["model"]["suite"]["rows"], report["baseline"]["suite"]["rows"])
    gate = report.get("gate", {})
    text = f"gate {'PASSED' if gate.get('passed') else 'REFUSED'}: {'; '.join(gate.get('reasons', []))}\n\n{table}\n"
    print(text)
    if args.markdown_out:
        args.markdown_out.write_text(text)


if __name__ == "__main__":
    main()
