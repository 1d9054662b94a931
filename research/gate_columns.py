"""The stratum gate over a comparison's columns, and the head of its report, as the research scripts write them."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipelines.evaluation.gate import suite_gate
from pipelines.evaluation.machine import cpu
from pipelines.evaluation.suite.command import compact_row
from pipelines.evaluation.suite.report import der_table, summarise


def gate_columns(columns: Mapping[str, Sequence[dict[str, Any]]], baseline: str) -> dict[str, str]:
    """Every column but `baseline` gated against it (`suite_gate`, paired bootstrap per stratum):
    name -> "PASS — reasons" or "REFUSED — reasons"."""
    base = [compact_row(row) for row in columns[baseline]]
    out = {}
    for name, rows in columns.items():
        if name != baseline:
            decision = suite_gate([compact_row(row) for row in rows], base)
            out[name] = f"{'PASS' if decision.passed else 'REFUSED'} — {'; '.join(decision.reasons)}"
    return out


def column_report(
    command: str, note: str, columns: Mapping[str, Sequence[dict[str, Any]]], baseline: str
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """(per-column stratum summaries, each column's gate against `baseline`, the report's first two
    parts: the command line with `note`, and the DER table with one column each)."""
    summaries = {name: summarise(rows) for name, rows in columns.items()}
    head = [f"Command: `{command}` ({time.strftime('%Y-%m-%d')}); {note}", der_table(summaries, list(columns))]
    return summaries, gate_columns(columns, baseline), head


def publish(markdown: str, out: str | Path, name: str) -> Path:
    """Print a report, its machine appended (DER moves with the CPU), and write it as `out/name`
    (the folder made if need be)."""
    markdown = f"{markdown}\n\nMachine: {cpu()}."
    print(markdown)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(markdown + "\n")
    return path
