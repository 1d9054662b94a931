"""The stratum gate over a comparison's columns, as the research scripts report it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipelines.evaluation.gate import suite_gate
from pipelines.evaluation.suite.command import compact_row


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
