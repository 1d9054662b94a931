"""The pipeline gate: a challenger pipeline becomes the default only where it wins.

Wins means: no worse than the incumbent on *every* dev set (by more than `margin`, in DER
points) and better on their mean. Averaging alone would let a large gain on simulated
conversations hide a loss on real meetings, which is what the product is for.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GateDecision:
    challenger: str
    adopted: bool
    reasons: tuple[str, ...]

    def line(self, incumbent: str) -> str:
        verdict = "adopted" if self.adopted else "refused"
        return f"gate: {self.challenger} vs {incumbent}: {verdict} ({'; '.join(self.reasons)})"


def gate(incumbent: dict[str, float], challenger: dict[str, float], name: str, margin: float = 0.0) -> GateDecision:
    """incumbent/challenger: dev set -> DER (fractions, collar 0). Sets missing from either are errors."""
    if set(incumbent) != set(challenger) or not incumbent:
        raise ValueError(
            f"both pipelines must be scored on the same dev sets, got {sorted(incumbent)} / {sorted(challenger)}"
        )
    reasons = []
    worse = [s for s in sorted(incumbent) if challenger[s] > incumbent[s] + margin]
    for s in sorted(incumbent):
        reasons.append(f"{s} {100 * challenger[s]:.2f}% vs {100 * incumbent[s]:.2f}%")
    mean_c = sum(challenger.values()) / len(challenger)
    mean_i = sum(incumbent.values()) / len(incumbent)
    adopted = not worse and mean_c < mean_i
    if worse:
        reasons.append(f"worse on {', '.join(worse)}")
    elif not mean_c < mean_i:
        reasons.append("no better on the mean")
    return GateDecision(name, adopted, tuple(reasons))


def choose_default(
    scores: dict[str, dict[str, float]], incumbent: str, margin: float = 0.0
) -> tuple[str, list[GateDecision]]:
    """The pipeline to ship as default: the incumbent unless challengers pass the gate (best mean wins)."""
    decisions = [gate(scores[incumbent], scores[c], c, margin) for c in sorted(scores) if c != incumbent]
    passed = [d.challenger for d in decisions if d.adopted]
    if not passed:
        return incumbent, decisions
    best = min(passed, key=lambda c: sum(scores[c].values()) / len(scores[c]))
    return best, decisions
