"""`voiceflow evaluate --model M [--gate] [--promote]`: evaluate, compare, gate, record, promote.

Exit codes (what a workflow step branches on): 0 evaluated (and the gate passed, if asked),
3 the gate refused the model, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from voiceflow.contracts import ExitCode

GATE_REFUSED = int(ExitCode.GATE_REFUSED)


def bundled_models_dir() -> Path:
    from voiceflow.embedding import MODELS_DIR

    return Path(MODELS_DIR)


def current_default_model(store: Path | None = None) -> Path:
    """The gate's baseline: the model the engine serves now, resolved as the engine resolves it
    (the model store's promoted bundle when intact, else the packaged default); a candidate must
    not be worse than what it would replace."""
    from voiceflow.embedding import default_model_path

    return default_model_path(store)


def chosen_store(args: argparse.Namespace) -> Path | None:
    """`--model-store`, else None: the engine's configured store."""
    store = getattr(args, "model_store", None)
    return Path(store).expanduser() if store else None


def promotion_store(args: argparse.Namespace) -> Path:
    from voiceflow.model_store import model_store_dir

    return chosen_store(args) or model_store_dir()


def refuse_unpromotable(args: argparse.Namespace, model: Path) -> str | None:
    """Why `--promote` cannot publish this candidate, checked before the (long) evaluation; None if it can."""
    from pipelines.evaluation.manifest import promotable_bundle, refuse_package_store
    from voiceflow.bundle import BundleError

    if model.resolve().parent == bundled_models_dir().resolve():
        return f"{model} is a packaged model; promote a model from outside the installed package"
    try:
        refuse_package_store(promotion_store(args))
        promotable_bundle(model)
    except (BundleError, ValueError, OSError) as err:
        return str(err)
    return None


def baseline_evaluation(args: argparse.Namespace, sets: Any, spec: dict[str, Any], naive: bool) -> dict[str, Any]:
    """The gate's baseline: a saved report (same sets, checked) or a fresh evaluation of the default."""
    from pipelines.evaluation.harness import evaluate_model

    saved = getattr(args, "baseline_report", None)
    if saved:
        data = json.loads(Path(saved).read_text())
        report: dict[str, Any] = data["model"] if "model" in data and "der" not in data else data
        if report.get("sets_spec") != spec:
            raise ValueError(f"{saved} was scored on {report.get('sets_spec')}, not on {spec}")
        return report
    baseline_model = getattr(args, "baseline_model", None)
    baseline = Path(baseline_model) if baseline_model else current_default_model(chosen_store(args))
    return evaluate_model(baseline, sets=sets, sets_spec=spec, naive=naive, speed_seconds=args.speed_seconds)


def refuse_heard_recordings(model: Path, meta: dict[str, Any], set_names: list[str]) -> None:
    """A held-out set is no test of a model trained on it: refuse before scoring anything."""
    from pipelines.evaluation.harness import heard_set_recordings

    heard = heard_set_recordings(meta, set_names)
    if heard:
        raise ValueError(
            f"{model} was trained on AMI train excerpts {', '.join(heard)}: the ami-train set is not held out for it"
        )


def suite_gate_spec(args: argparse.Namespace, model: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """The dev suite as the gate's data. AMI excerpts the model trained on are left out for both
    sides (the suite's AMI rows are held-out data, and the paired test needs the same recordings)."""
    from pipelines.evaluation.harness import AMI_TRAIN_SET, heard_set_recordings
    from pipelines.evaluation.suite.command import suite_spec

    heard = heard_set_recordings(meta, [AMI_TRAIN_SET])
    return suite_spec(
        args.suite,
        getattr(args, "suite_data", None),
        getattr(args, "suite_cache", None),
        getattr(args, "phases", 1),
        exclude_ami=heard,
    )


def run_model_evaluation(args: argparse.Namespace) -> int:
    from pipelines.evaluation.gate import gate
    from pipelines.evaluation.harness import evaluate_model, format_side_by_side, load_sets_from_spec
    from pipelines.evaluation.manifest import build_manifest, promote, read_model_metadata, record_manifest
    from voiceflow.bundle import BundleError

    model = Path(args.model)
    if not model.is_file():
        print(f"voiceflow evaluate: error: {model}: no such model file", file=sys.stderr)
        return 2
    data = getattr(args, "data", None)
    spec: dict[str, Any] = (
        {"folder": str(Path(data).resolve())}
        if data
        else {"names": [s for s in args.sets.split(",") if s], "data_dir": None}
    )
    if args.promote:
        why = refuse_unpromotable(args, model)
        if why:
            print(f"voiceflow evaluate: error: cannot promote: {why}", file=sys.stderr)
            return 2
    phases = getattr(args, "phases", 1)
    if phases != 1:  # a one-phase spec stays as it always was, so earlier baseline reports still match
        spec["phases"] = phases
    try:
        meta = read_model_metadata(model)
        if getattr(args, "suite", None):
            spec = suite_gate_spec(args, model, meta)
        refuse_heard_recordings(model, meta, spec.get("names", []))
        sets = load_sets_from_spec(spec)
    except ValueError as err:
        print(f"voiceflow evaluate: error: {err}", file=sys.stderr)
        return 2
    reports: dict[str, dict[str, Any]] = {}
    # the engine's own `--baseline` flag means "also show the naive floor"
    naive = bool(args.naive or getattr(args, "baseline", False) is True)
    report = evaluate_model(model, sets=sets, sets_spec=spec, naive=naive, speed_seconds=args.speed_seconds)
    reports[report["version"]] = report
    baseline_report, decision = None, None
    if args.gate or args.promote:
        try:
            baseline_report = baseline_evaluation(args, sets, spec, naive)
        except ValueError as err:  # a baseline report scored on other sets, or not JSON at all
            print(f"voiceflow evaluate: error: {err}", file=sys.stderr)
            return 2
        reports[baseline_report["version"] + " (baseline)"] = baseline_report
        decision = gate(report, baseline_report, args.margin)

    print(format_side_by_side(reports))
    for name, rep in reports.items():
        if "naive_floor" in rep:
            floor = {"der": rep["naive_floor"], "speed": {}}
            print("\n".join(format_side_by_side({f"naive floor ({name[:16]})": floor}).splitlines()[1:]))
    if baseline_report is not None:
        b, c = baseline_report["speed"], report["speed"]
        if b.get("ms_per_window_b32") and c.get("ms_per_window_b32"):
            print(f"speed-up vs baseline: {b['ms_per_window_b32'] / c['ms_per_window_b32']:.2f}x per window (batch 32)")
    if decision is not None:
        verdict = "PASSED" if decision.passed else "REFUSED"
        print(f"gate {verdict}: " + "; ".join(decision.reasons))

    manifest = None
    if not args.no_manifest and model.resolve().parent != bundled_models_dir().resolve():
        manifest = build_manifest(
            model,
            evaluation=report,
            gate=decision.to_dict() if decision else None,
            training=meta.get("training"),
            baseline=baseline_report,
        )
        try:
            print(f"manifest: {record_manifest(model, manifest)}")
        except BundleError as err:
            print(f"voiceflow evaluate: error: manifest not written: {err}", file=sys.stderr)
            return 2
    json_out = getattr(args, "json_out", None)
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(
            json.dumps(
                {"model": report, "baseline": baseline_report, "gate": decision and decision.to_dict()},
                indent=2,
            )
            + "\n"
        )
    if args.promote:
        if decision is None or not decision.passed:
            print("voiceflow evaluate: not promoted: the gate did not pass", file=sys.stderr)
        elif manifest is None:  # the promoted bundle carries the gate's record; without it, no promotion
            print("voiceflow evaluate: not promoted: --no-manifest leaves no gate record to publish", file=sys.stderr)
        else:
            try:
                promoted = promote(model, manifest, promotion_store(args))
            except (BundleError, ValueError, OSError) as err:
                print(f"voiceflow evaluate: error: not promoted: {err}", file=sys.stderr)
                return 2
            print(f"promoted: {promoted.model_path} (bundle {promoted.digest[:12]}, the model store's current)")
    return GATE_REFUSED if decision is not None and not decision.passed else 0
