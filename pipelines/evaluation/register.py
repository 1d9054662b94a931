"""`voiceflow register`: the workflow's last step. Gate the evaluated model and store the version.

Reads the JSON that `voiceflow evaluate --model M --json-out F` wrote, applies the DER gate
against the baseline in it (or, when the evaluation ran without --gate, evaluates the current
default on the same dev sets now), and stores the evaluated model's whole bundle under
STORE/VERSION/ as `model.*` (voiceflow.bundle.PUBLISHED_MODEL, whatever the evaluated file was
called): the graph, its background mean and PLDA byte for byte as the gate scored them, the
metadata with the version written in, this gate's manifest, and a fresh index sealing them. The
operator's export Job publishes exactly that bundle for serving, so a part left behind here (the
PLDA: VBx gated, AHC served) would silently serve a different system than the one gated.
A refused version is stored too (its manifest says why) so the decision is auditable, but the
step exits 3 so the workflow shows the refusal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.evaluation.gate import gate
from pipelines.evaluation.manifest import (
    MANIFEST_ROLE,
    build_manifest,
    copy_bundle_parts,
    read_model_metadata,
    write_manifest,
)
from voiceflow.bundle import (
    PUBLISHED_MODEL,
    ModelBundle,
    index_path,
    part_path,
    present_parts,
    verify_bundle,
    write_index,
)
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


def evaluated_bundle(model: Path) -> ModelBundle:
    """The bundle the gate scored, every part checked against its seal when it has one (a bare
    model is described as is). Its manifest is left out: the evaluation rewrote it, and register
    writes the version's own."""
    return verify_bundle(Path(model), ignore={MANIFEST_ROLE})


def store_bundle(source: ModelBundle, target_dir: Path, version: str) -> Path:
    """Copy every part of `source` but its manifest into `target_dir` as `model.*`, the metadata
    with `version` written in; the caller writes the manifest and seals. Returns the model's path.

    Parts an earlier registration of the same version left there are removed first, so a bundle
    without a PLDA never inherits a stale one."""
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / PUBLISHED_MODEL
    for stale in [*present_parts(target).values(), index_path(target)]:
        stale.unlink(missing_ok=True)
    copy_bundle_parts(source, target, "registered")
    meta = read_model_metadata(target)
    if meta:
        versioned = json.dumps(dict(meta, version=version), indent=2, sort_keys=True) + "\n"
        part_path(target, "metadata").write_text(versioned)
    return target


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
    source = evaluated_bundle(Path(model))  # before the (long) baseline scoring: a broken bundle fails fast
    if baseline is None:
        baseline = baseline_for(candidate, baseline_model)
    decision = gate(candidate, baseline, der_margin)
    target = store_bundle(source, Path(store) / version, version)
    meta = read_model_metadata(target)
    manifest = build_manifest(
        target,
        evaluation=candidate,
        gate=decision.to_dict(),
        training=meta.get("training"),
        baseline=baseline,
    )
    manifest["version"] = version
    # what the gate scored, as found beside the evaluated model: every part but the metadata (which
    # now names the version) is stored byte for byte, and the index below seals them together
    manifest["evaluated_bundle"] = {
        "model": str(source.model_path),
        "sealed": source.indexed,
        "parts": {role: part.sha256 for role, part in sorted(source.parts.items()) if role != MANIFEST_ROLE},
    }
    path = write_manifest(target, manifest)
    sealed = write_index(target)
    verdict = "PASSED" if decision.passed else "REFUSED"
    print(f"gate {verdict}: " + "; ".join(decision.reasons))
    print(f"registered {version}: {target} (bundle {sealed.digest[:12]}: {', '.join(sealed.roles)}; manifest {path})")
    return (0 if decision.passed else GATE_REFUSED), path
