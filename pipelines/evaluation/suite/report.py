"""Per-stratum figures from per-recording counts, and the Markdown tables docs/evaluation.md shows.

A stratum is a tag (`speakers:3`, `channel:telephone`, `flag:dominant`, `source:ami`) or `pooled`
(every recording). Copies of one recording (AMI at several window phases) are summed into that
recording first: the bootstrap resamples recordings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipelines.evaluation.suite.stats import RESAMPLES, SEED, Interval, bootstrap_ratio, count_accuracy

POOLED = "pooled"
METRICS = ("der", "der_collar_0.25", "jer")
COMPONENTS = ("false_alarm", "missed", "confusion")  # parts of the collar-0 DER
# Row order of the tables: pooled first, then sources, speaker counts, channels, flags.
TAG_ORDER = ("source:", "speakers:", "channel:", "flag:")


def by_recording(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Sum each recording's copies: errors and totals per metric, and its count hits."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        rec = out.setdefault(
            row["recording"],
            {"tags": row["tags"], "copies": 0, "exact": 0, "within_1": 0, **{m: [0.0, 0.0] for m in METRICS}}
            | {c: 0.0 for c in COMPONENTS},
        )
        rec["copies"] += 1
        for m in METRICS:
            rec[m][0] += row[m]["errors"]
            rec[m][1] += row[m]["total"]
        for c in COMPONENTS:
            rec[c] += row["der"][c]
        rec["exact"] += int(row["hyp_speakers"] == row["ref_speakers"])
        rec["within_1"] += int(abs(row["hyp_speakers"] - row["ref_speakers"]) <= 1)
    return out


def strata(recordings: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """stratum -> its recordings, in table order."""
    groups: dict[str, list[str]] = {POOLED: sorted(recordings)}
    for uri, rec in sorted(recordings.items()):
        for tag in rec["tags"]:
            groups.setdefault(tag, []).append(uri)

    def order(name: str) -> tuple[int, str]:
        rank = next((i for i, p in enumerate(TAG_ORDER) if name.startswith(p)), -1)
        return rank, name

    return {name: groups[name] for name in sorted(groups, key=order)}


def summarise(
    rows: Sequence[dict[str, Any]], resamples: int = RESAMPLES, seed: int = SEED
) -> dict[str, dict[str, Any]]:
    """stratum -> {recordings, speech_seconds, der/der_collar_0.25/jer intervals, count accuracy}."""
    recs = by_recording(rows)
    out: dict[str, dict[str, Any]] = {}
    for name, uris in strata(recs).items():
        entry: dict[str, Any] = {"recordings": len(uris), "speech_seconds": sum(recs[u]["der"][1] for u in uris)}
        for m in METRICS:
            interval = bootstrap_ratio([recs[u][m][0] for u in uris], [recs[u][m][1] for u in uris], resamples, seed)
            entry[m] = interval.to_dict()
        speech = entry["speech_seconds"] or 1.0
        for c in COMPONENTS:
            entry[c] = sum(recs[u][c] for u in uris) / speech
        copies = sum(recs[u]["copies"] for u in uris)
        entry["count_exact"] = sum(recs[u]["exact"] for u in uris) / copies
        entry["count_within_1"] = sum(recs[u]["within_1"] for u in uris) / copies
        out[name] = entry
    return out


def count_summary(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    return count_accuracy([r["hyp_speakers"] for r in rows], [r["ref_speakers"] for r in rows])


def _cell(interval: dict[str, float] | Interval) -> str:
    d = interval.to_dict() if isinstance(interval, Interval) else interval
    return f"{100 * d['point']:.1f} [{100 * d['low']:.1f}, {100 * d['high']:.1f}]"


def der_table(summaries: dict[str, dict[str, dict[str, Any]]], columns: Sequence[str]) -> str:
    """One row per stratum; one column per system (in `columns` order): DER % [95 % CI], collar 0."""
    first = summaries[columns[0]]
    head = "| stratum | n | speech (min) | " + " | ".join(columns) + " |"
    lines = [head, "|" + "---|" * (3 + len(columns))]
    for name, entry in first.items():
        cells = [_cell(summaries[c][name]["der"]) if name in summaries[c] else "-" for c in columns]
        lines.append(
            f"| {name} | {entry['recordings']} | {entry['speech_seconds'] / 60:.1f} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def detail_table(summary: dict[str, dict[str, Any]]) -> str:
    """One system: DER at both collars, JER, and speaker-count accuracy per stratum."""
    lines = [
        "| stratum | n | DER | DER (collar 0.25) | JER | count exact | count within 1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in summary.items():
        lines.append(
            f"| {name} | {e['recordings']} | {_cell(e['der'])} | {_cell(e['der_collar_0.25'])} | {_cell(e['jer'])} | "
            f"{100 * e['count_exact']:.0f} % | {100 * e['count_within_1']:.0f} % |"
        )
    return "\n".join(lines)
