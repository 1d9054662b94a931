"""`voiceflow register`: the workflow's last step. Gate the evaluated model and store the version.

Reads the JSON that `voiceflow evaluate --model M --json-out F` wrote, applies the DER gate
against the baseline in it (or, when the evaluation ran without --gate, evaluates the current
default on the same dev sets now), and stores model + metadata + manifest under
STORE/VERSION/. A refused version is stored too (its manifest says why) so the decision is
auditable, but the step exits 3 so the workflow shows the refusal.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from pipelines.evaluation.gate import gate
from pipelines.evaluation.manifest import build_manifest, read_model_metadata, write_manifest
from voiceflow.contracts import ExitCode

GATE_REFUSED = int(ExitCode.GATE_REFUSED)


def candidate_and_baseline(metrics: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Accept both the full evaluate output ({"model": ..., "baseline": ...}) and a bare report."""
    if "der" in metrics:
        return metrics, None
    return metrics["model"], metrics.get("baseline")


def baseline_for(candidate: dict[str, Any], baseline_model: Path | None) -> dict[str, Any]:
    from pipelines.evaluation.command import current_default_model
    from pipelines.evaluation.harness import evaluate_model, load_sets_from_spec

    spec = candidate.get("sets_spec", {})
    sets = load_sets_from_spec(spec)
    model = baseline_model or current_default_model()
    # the spec goes along: a suite spec selects the suite's scoring (and its stratum gate), and the
    # baseline report records what it was scored on, as the candidate's does
    return evaluate_model(model, sets=sets, sets_spec=spec or None, speed_seconds=1.0)


def register(
    model: Path,
    metrics_path: Path,
    version: str,
    store: Path,
    der_margin: float,
    baseline_model: Path | None = None,
) -> tuple[int, Path]:
    metrics = json.loads(Path(metrics_path).read_text())
    candidate, baseline = candidate_and_baseline(metrics)
    if baseline is None:
        baseline = baseline_for(candidate, baseline_model)
    decision = gate(candidate, baseline, der_margin)
    target_dir = Path(store) / version
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / Path(model).name
    shutil.copyfile(model, target)
    meta = read_model_metadata(Path(model))
    if meta:
        target.with_suffix(".json").write_text(json.dumps(dict(meta, version=version), indent=2, sort_keys=True) + "\n")
    manifest = build_manifest(
        target,
        evaluation=candidate,
        gate=decision.to_dict(),
        training=meta.get("training"),
        baseline=baseline,
    )
    manifest["version"] = version
    path = write_manifest(target, manifest)
    verdict = "PASSED" if decision.passed else "REFUSED"
    print(f"gate {verdict}: " + "; ".join(decision.reasons))
    print(f"registered {version}: {target} (manifest {path})")
    return (0 if decision.passed else GATE_REFUSED), path
