"""The offline VAD's settings chosen on the dev suite by cross-validation (issue 22).

    voiceflow evaluate --suite dev --system NAME=offline.vad.KEY=VALUE,... [...] --json-out F.json
    .venv/bin/python research/vad_settings_cv.py F.json [--out research/results/vad]

The engine's VAD rules (threshold, padding, minimum silence) were Silero's defaults, never chosen
on the suite; on the AMI excerpts the default engine misses 18.6 % of the reference speaker-time
where nobody is heard at all, at 0.2 % false alarm. This reads one `voiceflow evaluate` run with a
column per VAD setting (the `default` column is the shipped setting), chooses for each fold the
column with the lowest pooled collar-0 DER on the other three folds (pipelines.evaluation.suite
.folds), reports the held-out rows per stratum with bootstrap intervals and gates the
cross-validated column against the default (pipelines.evaluation.gate.suite_gate).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from gate_columns import column_report, publish

from pipelines.evaluation.suite.folds import cross_validate, pooled_loss

BASELINE = "default"


def components(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Pooled false alarm / miss / confusion, % of reference speech, per source."""
    out = {}
    for source in ("pooled", "source:ami", "source:sim"):
        c: Counter[str] = Counter()
        for row in rows:
            if source == "pooled" or source in row["tags"]:
                for key in ("false_alarm", "missed", "confusion", "total"):
                    c[key] += row["der"][key]
        out[source] = " / ".join(f"{100 * c[k] / c['total']:.1f}" for k in ("false_alarm", "missed", "confusion"))
    return out


def _errors(rows: list[dict[str, Any]]) -> list[tuple[str, float]]:
    return sorted((row["uri"], float(row["der"]["errors"])) for row in rows)


def cv_report(systems: dict[str, list[dict[str, Any]]], command: str, note: str = "", mode: str = "offline") -> str:
    """The markdown report: the column chosen per fold on the other folds (held out), every column,
    false alarm / miss / confusion, and each column's stratum gate against `default`."""
    if BASELINE not in systems or len(systems) < 2:
        raise SystemExit(f"the run needs a '{BASELINE}' column and at least one candidate: {sorted(systems)}")
    by_uri = {name: {row["uri"]: row for row in rows} for name, rows in systems.items()}
    items = [SimpleNamespace(uri=r["uri"], recording=r["recording"], fold=r["fold"]) for r in systems[BASELINE]]

    def counts(name: str, uri: str) -> tuple[float, float]:
        der = by_uri[name][uri]["der"]
        return float(der["errors"]), float(der["total"])

    fold_of, loss = pooled_loss(items, counts)
    names = [BASELINE, *sorted(n for n in systems if n != BASELINE)]
    chosen = cross_validate(fold_of, names, loss)
    cv_rows = [by_uri[chosen[item.fold]][item.uri] for item in items]
    columns = {"cross-validated": cv_rows, **{name: systems[name] for name in names}}
    _, gates, head = column_report(
        command,
        f"{len(items)} items; {mode}{note}. DER (collar 0) % [95 % interval]; `cross-validated` is the "
        "held-out folds' rows with the column chosen on the other folds:",
        columns,
        BASELINE,
    )
    everything = sorted(fold_of)
    lines = [
        *head,
        "Chosen per fold: " + ", ".join(f"fold {f}: {n}" for f, n in sorted(chosen.items())),
        "False alarm / missed / confusion, % of reference speech (pooled; AMI; simulated):\n\n"
        + "\n".join(
            f"- {name}: {c['pooled']}; {c['source:ami']}; {c['source:sim']}"
            for name, c in ((n, components(r)) for n, r in columns.items())
        ),
        "In-sample pooled DER (reading only): " + ", ".join(f"{n} {100 * loss(n, everything):.2f} %" for n in names),
        "Stratum gate against the default:\n\n" + "\n".join(f"- {n}: {g}" for n, g in gates.items()),
    ]
    return "\n\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "runs", nargs="+", help="JSON of `voiceflow evaluate --suite dev --system ...` runs (columns are merged)"
    )
    parser.add_argument("--mode", choices=("offline", "streaming"), default="offline")
    parser.add_argument("--out", default="research/results/vad")
    args = parser.parse_args(argv)

    systems: dict[str, list[dict[str, Any]]] = {}
    for path in args.runs:
        for name, rows in json.loads(Path(path).read_text())["rows"][args.mode].items():
            if name.startswith("naive"):
                continue
            if name in systems and _errors(systems[name]) != _errors(rows):
                raise SystemExit(f"column {name!r} differs between the runs: they are not the same system")
            systems[name] = rows
    command = " ".join(["research/vad_settings_cv.py", *(argv if argv is not None else sys.argv[1:])])
    markdown = cv_report(systems, command, mode=args.mode)
    suffix = "" if args.mode == "offline" else f"-{args.mode}"
    publish(markdown, args.out, f"dev-vad-cv{suffix}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
