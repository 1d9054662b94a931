"""The promotion gate: a candidate ships only if its DER is no worse than the current default's.

A pure function of two evaluation reports, so the decision is reproducible from the manifest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    margin: float
    reasons: tuple[str, ...]  # why it failed (empty when passed) or, when passed, what was compared

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gate(candidate: dict[str, Any], baseline: dict[str, Any], margin: float = 0.0) -> GateDecision:
    """Pass iff on every dev set and on the mean, DER(candidate) <= DER(baseline) + margin.

    `margin` is absolute DER (0.01 = one point) and may be negative to demand an improvement.
    Every set must hold: a gain on simulated speech must not hide a loss on real meetings.
    """
    failures: list[str] = []
    checks: list[str] = []
    for name, row in baseline["der"].items():
        cand = candidate["der"].get(name)
        if cand is None:
            failures.append(f"{name}: candidate was not evaluated on this set")
            continue
        line = f"{name}: DER {100 * cand['der']:.2f}% vs {100 * row['der']:.2f}% (margin {100 * margin:+.2f})"
        (checks if cand["der"] <= row["der"] + margin + 1e-12 else failures).append(line)
    cand_mean, base_mean = float(candidate["mean_der"]), float(baseline["mean_der"])
    line = f"mean: DER {100 * cand_mean:.2f}% vs {100 * base_mean:.2f}% (margin {100 * margin:+.2f})"
    (checks if cand_mean <= base_mean + margin + 1e-12 else failures).append(line)
    return GateDecision(not failures, margin, tuple(failures) if failures else tuple(checks))
