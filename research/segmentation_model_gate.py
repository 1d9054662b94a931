"""A candidate segmentation network against the shipped one, paired on the dev suite (issue 24).

    .venv/bin/python research/segmentation_model_gate.py SHIPPED.json CANDIDATE.json \
        [--system segmentation] [--out research/results/NAME/model-gate]

SHIPPED.json and CANDIDATE.json are `research/overlap_suite.py --strata all --out DIR` results
(DIR/overlap-all.json, the file with the per-recording rows), the second run with
`--segmentation-model CANDIDATE.onnx`. The decision is the stratum gate's (`suite_gate`: better
pooled, no stratum's paired 95 % interval wholly above zero) with the shipped network as the
baseline, i.e. whether the candidate may replace `voiceflow/models/segmentation.onnx`; the table
gives every stratum's paired difference, not only the failing ones, and the overlap detection
precision / recall of both.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pipelines.evaluation.gate import suite_gate
from pipelines.evaluation.suite.command import compact_row
from pipelines.evaluation.suite.stats import paired_bootstrap_difference, pooled_ratio

POOLED = "pooled"


def per_recording(rows: list[dict[str, Any]]) -> dict[str, tuple[set[str], float, float]]:
    """(tags, errors, total) per recording, phase copies summed as the gate sums them."""
    out: dict[str, tuple[set[str], float, float]] = {}
    for row in rows:
        tags, errors, total = out.get(row["recording"], (set(), 0.0, 0.0))
        out[row["recording"]] = (tags | set(row["tags"]), errors + row["der"]["errors"], total + row["der"]["total"])
    return out


def stratum_table(shipped: list[dict[str, Any]], candidate: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per stratum (pooled first): both DERs and the paired difference candidate - shipped."""
    base, cand = per_recording(shipped), per_recording(candidate)
    if set(base) != set(cand):
        raise ValueError(f"scored on different recordings: {sorted(set(base) ^ set(cand))[:5]}")
    groups: dict[str, list[str]] = {POOLED: sorted(base)}
    for uri in sorted(base):
        for tag in base[uri][0]:
            groups.setdefault(tag, []).append(uri)
    table = []
    for name in [POOLED, *sorted(g for g in groups if g != POOLED)]:
        uris = groups[name]
        b_err, c_err = [base[u][1] for u in uris], [cand[u][1] for u in uris]
        totals = [base[u][2] for u in uris]
        diff = paired_bootstrap_difference(c_err, b_err, totals)
        table.append(
            {
                "stratum": name,
                "recordings": len(uris),
                "shipped": pooled_ratio(b_err, totals),
                "candidate": pooled_ratio(c_err, totals),
                "difference": diff.to_dict(),
            }
        )
    return table


def markdown(table: list[dict[str, Any]], decision: dict[str, Any], overlap: dict[str, Any]) -> str:
    lines = [
        f"Gate (candidate vs shipped network): **{'PASS' if decision['passed'] else 'FAIL'}** — {decision['reason']}",
        "",
        "Overlap P / R: overlap detection precision / recall %; FA: false alarm (in silence + in speech) and "
        "missed overlap, points of DER; shipped -> candidate.",
        "",
        "| stratum | n | shipped DER % | candidate DER % | difference (points) [95 %] | overlap P / R | FA | "
        "missed overlap |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in table:
        d = row["difference"]
        worse = " **worse**" if d["low"] > 0 else (" better" if d["high"] < 0 else "")
        b, c = (overlap[side].get(row["stratum"], {}) for side in ("shipped", "candidate"))
        lines.append(
            f"| {row['stratum']} | {row['recordings']} | {100 * row['shipped']:.1f} | {100 * row['candidate']:.1f} | "
            f"{100 * d['point']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]{worse} | "
            f"{_pct(b, 'overlap_precision')} / {_pct(b, 'overlap_recall')} -> "
            f"{_pct(c, 'overlap_precision')} / {_pct(c, 'overlap_recall')} | "
            f"{_pct(b, 'false_alarm_silence', 'false_alarm_speech')} -> "
            f"{_pct(c, 'false_alarm_silence', 'false_alarm_speech')} | "
            f"{_pct(b, 'missed_overlap')} -> {_pct(c, 'missed_overlap')} |"
        )
    return "\n".join(lines)


def _pct(values: dict[str, float], *keys: str) -> str:
    return f"{100 * sum(values[k] for k in keys):.1f}" if all(k in values for k in keys) else "-"


def overlap_of(result: dict[str, Any], system: str) -> dict[str, dict[str, float]]:
    """stratum -> overlap precision / recall and the false-alarm and missed-overlap DER parts,
    as fractions, from overlap_suite's summary."""
    keys = ("overlap_precision", "overlap_recall", "false_alarm_silence", "false_alarm_speech", "missed_overlap")
    return {
        stratum: {k: float(values[k]) for k in keys if k in values}
        for stratum, values in result.get("overlap", {}).get(system, {}).items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shipped", type=Path)
    parser.add_argument("candidate", type=Path)
    parser.add_argument("--system", default="segmentation")
    parser.add_argument("--out", type=Path, help="write OUT.md and OUT.json")
    args = parser.parse_args(argv)
    shipped, candidate = (json.loads(p.read_text()) for p in (args.shipped, args.candidate))
    base_rows, cand_rows = shipped["rows"][args.system], candidate["rows"][args.system]
    gate = suite_gate([compact_row(r) for r in cand_rows], [compact_row(r) for r in base_rows])
    decision = {"passed": gate.passed, "reason": "; ".join(gate.reasons)}
    table = stratum_table(base_rows, cand_rows)
    overlap = {"shipped": overlap_of(shipped, args.system), "candidate": overlap_of(candidate, args.system)}
    text = markdown(table, decision, overlap)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(text + "\n")
        summary = {
            "system": args.system,
            "shipped": shipped["engine"],
            "candidate": candidate["engine"],
            "gate": decision,
            "strata": table,
            "overlap": overlap,
        }
        args.out.with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
