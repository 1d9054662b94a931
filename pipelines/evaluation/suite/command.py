"""`voiceflow evaluate --suite dev`: systems side by side on the dev suite, and the suite as the
data of `evaluate --model M --gate` and `register` (`model_report`).

Exit codes: 0 done, 1 a system failed (the others are still scored and written), 2 bad input
(unknown suite or system, missing data).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pipelines.evaluation.machine import cpu
from pipelines.evaluation.suite.cache import cache_root, load_suite
from pipelines.evaluation.suite.manifest import SuiteConfig
from pipelines.evaluation.suite.report import der_table, detail_table, summarise
from pipelines.evaluation.suite.runner import OFFLINE, STREAMING, Context, EvalItem, build_items, run_system
from pipelines.evaluation.suite.systems import BUILTIN, ENGINE, NAIVE_ORACLE, NAIVE_TUNED, SystemSpec, parse_system

SUITES = {
    "dev": SuiteConfig(),
    # a few minutes of audio: a smoke test of the whole path, never a result
    "quick": SuiteConfig(name="quick", per_cell=1, long_recordings=0, max_seconds=40.0),
}
TABLE_SYSTEMS = ("default", NAIVE_ORACLE, NAIVE_TUNED)
SCORER = "pyannote.metrics: DER collar 0 and 0.25 with overlap scored, JER; 95 % bootstrap over recordings"


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def suite_spec(
    name: str,
    data_dir: str | None = None,
    cache: str | None = None,
    phases: int = 1,
    exclude_ami: list[str] | None = None,
) -> dict[str, Any]:
    """How to load the same suite again (recorded in reports, so register's baseline sees it too)."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; known: {', '.join(SUITES)}")
    spec: dict[str, Any] = {"suite": name, "data_dir": data_dir, "cache": cache}
    if phases != 1:
        spec["phases"] = phases
    if exclude_ami:
        spec["exclude_ami"] = sorted(exclude_ami)
    return spec


def load_items(spec: dict[str, Any]) -> list[EvalItem]:
    from pipelines.evaluation.devsets import load_ami_split
    from pipelines.paths import shared_data_dir
    from voiceflow.pipeline import DiarizationConfig

    data = Path(spec["data_dir"]) if spec.get("data_dir") else shared_data_dir()
    recordings, folder = load_suite(SUITES[spec["suite"]], data, spec.get("cache"), progress=log)
    log(f"suite {spec['suite']}: {len(recordings)} recordings in {folder}")
    excluded = set(spec.get("exclude_ami", []))
    ami = [it for it in load_ami_split("train", data) + load_ami_split("development", data) if it.uri not in excluded]
    return build_items(recordings, ami, ami_phases=spec.get("phases", 1), step_seconds=DiarizationConfig().step_seconds)


def context(spec: dict[str, Any], default_model: str | None = None) -> Context:
    return Context(cache_root(spec.get("cache")) / "runs", default_model, log)


def model_report(
    model_path: Path, items: list[EvalItem] | None, spec: dict[str, Any], speed_seconds: float = 0.0
) -> dict[str, Any]:
    """The engine's default offline pipeline with `model_path` on the suite, as a gate report:
    per-stratum rows ("der" as the harness writes them), the pooled DER as "mean_der", and the
    per-recording counts the stratum gate resamples."""
    from pipelines.evaluation.speed import speed_report

    items = items if items is not None else load_items(spec)
    ctx = context(spec)
    model = ctx.model(str(model_path))
    rows = run_system(SystemSpec("candidate", model=str(model_path)), items, OFFLINE, ctx)
    summary = summarise(rows)
    der = {
        name: {
            "der": e["der"]["point"],
            "der_low": e["der"]["low"],
            "der_high": e["der"]["high"],
            "der_collar_0.25": e["der_collar_0.25"]["point"],
            "jer": e["jer"]["point"],
            "false_alarm": e["false_alarm"],
            "missed": e["missed"],
            "confusion": e["confusion"],
            "count_exact": e["count_exact"],
            "count_within_1": e["count_within_1"],
            "recordings": e["recordings"],
        }
        for name, e in summary.items()
    }
    return {
        "model": str(model_path),
        "sha256": model.sha256,
        "version": model.version,
        "der": der,
        "mean_der": der["pooled"]["der"],
        "suite": {"rows": [compact_row(r) for r in rows]},
        "scorer": SCORER,
        "speed": speed_report(Path(model_path), speed_seconds) if speed_seconds > 0 else {},
        "machine": cpu(),
        "sets_spec": spec,
    }


def compact_row(row: dict[str, Any]) -> dict[str, Any]:
    """What the stratum gate needs of a recording: its strata and its collar-0 DER counts."""
    return {
        "uri": row["uri"],
        "recording": row["recording"],
        "tags": row["tags"],
        "errors": row["der"]["errors"],
        "total": row["der"]["total"],
    }


def _systems(args: argparse.Namespace) -> list[SystemSpec]:
    extra = [parse_system(text) for text in getattr(args, "system", None) or []]
    if getattr(args, "model", None):
        extra.insert(0, SystemSpec("candidate", model=args.model))
    names = [s.name for s in extra]
    if len(set(names)) != len(names):
        raise ValueError(f"system names must be unique: {', '.join(names)}")
    builtins = [BUILTIN[n] for n in TABLE_SYSTEMS if n not in names]
    # candidates first, then today's default and the two naive references: the table's column order
    return extra + builtins


def run_suite_evaluation(args: argparse.Namespace) -> int:
    try:
        spec = suite_spec(
            args.suite,
            getattr(args, "suite_data", None),
            getattr(args, "suite_cache", None),
            getattr(args, "phases", 1),
        )
        systems = _systems(args)
        items = load_items(spec)
    except (ValueError, FileNotFoundError) as err:
        print(f"voiceflow evaluate: error: {err}", file=sys.stderr)
        return 2
    ctx = context(spec)
    modes = [OFFLINE, STREAMING] if getattr(args, "streaming", False) else [OFFLINE]
    results: dict[str, dict[str, list[dict[str, Any]]]] = {mode: {} for mode in modes}
    timings: dict[str, float] = {}
    failures: dict[str, str] = {}
    for mode in modes:
        for system in systems:
            if mode == STREAMING and system.kind != ENGINE:
                continue  # the naive pipelines are offline only; the streaming table shows their offline figures
            started = time.perf_counter()
            log(f"{system.name} ({mode})")
            try:
                results[mode][system.name] = run_system(system, items, mode, ctx)
            except Exception as err:  # one broken system must not cost the others their hour
                failures[f"{system.name} {mode}"] = f"{type(err).__name__}: {err}"
                log(f"  {system.name} {mode} FAILED: {failures[f'{system.name} {mode}']}")
                continue
            timings[f"{system.name} {mode}"] = round(time.perf_counter() - started, 1)
    summaries = {mode: {name: summarise(rows) for name, rows in res.items()} for mode, res in results.items()}
    markdown = format_markdown(summaries, [s.name for s in systems], spec, items)
    print(markdown)
    if getattr(args, "json_out", None):
        payload = {
            "spec": spec,
            "machine": cpu(),
            "systems": [s.to_dict() for s in systems],
            "scorer": SCORER,
            "seconds": timings,
            "failures": failures,
            "summary": summaries,
            "rows": results,
        }
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(payload, indent=1) + "\n")
    if getattr(args, "markdown_out", None):
        Path(args.markdown_out).write_text(markdown + "\n")
    return 1 if failures else 0


def format_markdown(
    summaries: dict[str, dict[str, dict[str, Any]]], order: list[str], spec: dict[str, Any], items: list[EvalItem]
) -> str:
    hours = sum(len(it.audio) for it in items) / 16000 / 3600
    parts = [
        f"Suite `{spec['suite']}`: {len({it.recording for it in items})} recordings, {hours:.2f} h of audio. "
        f"{SCORER}. Cells: DER % [95 % interval]. naive-tuned's threshold is chosen on the other folds. "
        f"Machine: {cpu()} (DER moves with the CPU: compare runs of one machine).",
    ]
    for mode, by_system in summaries.items():
        columns = [n for n in order if n in by_system]
        if mode == STREAMING:  # the naive references have no streaming form: show their offline figures
            offline = summaries.get(OFFLINE, {})
            by_system = dict(by_system) | {
                f"{n} (offline)": offline[n] for n in order if n not in by_system and n in offline
            }
            columns += [f"{n} (offline)" for n in order if f"{n} (offline)" in by_system]
        parts.append(f"### {mode}: DER (collar 0) per stratum\n\n" + der_table(by_system, columns))
        for name in columns:
            if name in summaries[mode]:
                parts.append(f"#### {mode}, {name}: all metrics\n\n" + detail_table(summaries[mode][name]))
    return "\n\n".join(parts)
