"""The gates: a candidate model ships only if its DER is no worse than the current default's
(`gate`, `suite_gate`), and a challenger pipeline becomes the default only where it wins
(`pipeline_gate`, `choose_default`). One decision type serves both.

Pure functions of evaluation reports, so a decision is reproducible from the manifest.
On the dev suite (reports with per-recording counts, `voiceflow evaluate --suite dev`) the rule is
the issue's: better pooled, and not significantly worse on any stratum (`suite_gate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pipelines.evaluation.suite.stats import RESAMPLES, SEED, paired_bootstrap_difference, pooled_ratio


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    margin: float
    reasons: tuple[str, ...]  # why it failed (empty when passed) or, when passed, what was compared
    candidate: str = ""  # what was gated, where several candidates are (pipelines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self, incumbent: str) -> str:
        verdict = "adopted" if self.passed else "refused"
        return f"gate: {self.candidate} vs {incumbent}: {verdict} ({'; '.join(self.reasons)})"


def gate(candidate: dict[str, Any], baseline: dict[str, Any], margin: float = 0.0) -> GateDecision:
    """Pass iff on every dev set and on the mean, DER(candidate) <= DER(baseline) + margin.

    `margin` is absolute DER (0.01 = one point) and may be negative to demand an improvement.
    Every set must hold: a gain on simulated speech must not hide a loss on real meetings.
    Two suite reports (both with "suite") are gated by `suite_gate` instead.
    """
    if "suite" in candidate and "suite" in baseline:
        return suite_gate(candidate["suite"]["rows"], baseline["suite"]["rows"], margin)
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


def _per_recording(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[tuple[str, ...], float, float]]:
    """recording -> (tags, errors, total); copies of one recording (AMI at several window phases,
    pooled so one grid position cannot decide a short meeting) are summed into it."""
    out: dict[str, tuple[tuple[str, ...], float, float]] = {}
    for row in rows:
        tags, errors, total = out.get(row["recording"], (tuple(row["tags"]), 0.0, 0.0))
        out[row["recording"]] = (tags, errors + float(row["errors"]), total + float(row["total"]))
    return out


def suite_gate(
    candidate_rows: Sequence[dict[str, Any]],
    baseline_rows: Sequence[dict[str, Any]],
    margin: float = 0.0,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> GateDecision:
    """Pass iff the pooled DER is lower than the baseline's (+ `margin`) and no stratum is
    significantly worse: the paired bootstrap 95 % interval of DER(candidate) - DER(baseline),
    resampling the stratum's recordings, must not lie wholly above zero.

    Rows: {"recording", "tags", "errors", "total"} per scored copy (collar-0 DER counts). Both
    sides must cover the same recordings: a paired test on different audio means nothing.
    """
    cand, base = _per_recording(candidate_rows), _per_recording(baseline_rows)
    if set(cand) != set(base) or not cand:
        missing = sorted(set(base) ^ set(cand))[:5]
        return GateDecision(False, margin, (f"candidate and baseline were scored on different recordings: {missing}",))
    uris = sorted(cand)
    failures: list[str] = []
    checks: list[str] = []
    c_pooled = pooled_ratio([cand[u][1] for u in uris], [cand[u][2] for u in uris])
    b_pooled = pooled_ratio([base[u][1] for u in uris], [base[u][2] for u in uris])
    line = f"pooled: DER {100 * c_pooled:.2f}% vs {100 * b_pooled:.2f}% (margin {100 * margin:+.2f})"
    better = c_pooled < b_pooled + margin
    (checks if better else failures).append(line if better else f"{line}, not better")
    strata: dict[str, list[str]] = {}
    for u in uris:
        for tag in cand[u][0]:
            strata.setdefault(tag, []).append(u)
    for name, members in sorted(strata.items()):
        diff = paired_bootstrap_difference(
            [cand[u][1] for u in members], [base[u][1] for u in members], [cand[u][2] for u in members], resamples, seed
        )
        line = (
            f"{name} ({len(members)}): DER {100 * diff.point:+.2f} points "
            f"[{100 * diff.low:+.2f}, {100 * diff.high:+.2f}]"
        )
        (failures if diff.low > 0 else checks).append(line + (", significantly worse" if diff.low > 0 else ""))
    return GateDecision(not failures, margin, tuple(failures) if failures else tuple(checks))


def pipeline_gate(
    incumbent: dict[str, float], challenger: dict[str, float], name: str, margin: float = 0.0
) -> GateDecision:
    """A challenger pipeline wins when it is no worse than the incumbent on *every* dev set (by
    more than `margin`, DER points as fractions) and strictly better on their mean: averaging alone
    would let a gain on simulated conversations hide a loss on real meetings, and a tie is no
    reason to change. incumbent/challenger: dev set -> DER (collar 0); both must name the same sets."""
    if set(incumbent) != set(challenger) or not incumbent:
        raise ValueError(
            f"both pipelines must be scored on the same dev sets, got {sorted(incumbent)} / {sorted(challenger)}"
        )
    reasons = [f"{s} {100 * challenger[s]:.2f}% vs {100 * incumbent[s]:.2f}%" for s in sorted(incumbent)]
    worse = [s for s in sorted(incumbent) if challenger[s] > incumbent[s] + margin]
    better_mean = sum(challenger.values()) / len(challenger) < sum(incumbent.values()) / len(incumbent)
    if worse:
        reasons.append(f"worse on {', '.join(worse)}")
    elif not better_mean:
        reasons.append("no better on the mean")
    return GateDecision(not worse and better_mean, margin, tuple(reasons), candidate=name)


def choose_default(
    scores: dict[str, dict[str, float]], incumbent: str, margin: float = 0.0
) -> tuple[str, list[GateDecision]]:
    """The pipeline to ship as default: the incumbent unless challengers pass the gate (best mean wins)."""
    decisions = [pipeline_gate(scores[incumbent], scores[c], c, margin) for c in sorted(scores) if c != incumbent]
    passed = [d.candidate for d in decisions if d.passed]
    if not passed:
        return incumbent, decisions
    best = min(passed, key=lambda c: sum(scores[c].values()) / len(scores[c]))
    return best, decisions
