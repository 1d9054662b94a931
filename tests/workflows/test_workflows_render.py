"""The hera-built workflows: golden files of the rendered YAML, schema-valid, and every step a
real `voiceflow` command.

Golden files change only on request: `VOICEFLOW_REGEN_GOLDEN=1 pytest tests/workflows`
rewrites them (refused when CI is set), then review the diff like any other code change.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from vf_cli_contract import check_argv, substitute

from voiceflow_workflows import (
    STEP_COMMANDS,
    BatchWorkflowParams,
    TrainingWorkflowParams,
    build_batch_workflow,
    build_training_workflow,
)

GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("VOICEFLOW_REGEN_GOLDEN") == "1"

# The batch case, also as `python -m voiceflow_workflows batch` flags (--name VALUE ...): the golden
# file and the CLI test read these same values.
BATCH: dict[str, Any] = {
    "name": "batch-2026-11-25",
    "namespace": "voiceflow",
    "input": "/data/incoming/manifest.txt",
    "output": "/data/rttm",
    "image": "ghcr.io/voiceflow/voiceflow-train:0.1.0",
    "model": "/models/meetings/1.2.0/model.onnx",
    "workers": 8,
}
CASES: dict[str, dict[str, Any]] = {
    "training-preset": build_training_workflow(
        TrainingWorkflowParams(
            name="meetings-train-1-2-0-0",
            namespace="voiceflow",
            version="1.2.0",
            dataset="s3://voiceflow-data/librispeech-ami",
            image="ghcr.io/voiceflow/voiceflow-train:0.1.0",
            config="full",
            artifacts="pvc://voiceflow-models/meetings",
            quantize="int8",
            der_margin=0.01,
            resources={"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"memory": "16Gi"}},
        )
    ),
    "training-config-file": build_training_workflow(
        TrainingWorkflowParams(
            name="demo-train-0-1-0-0",
            version="0.1.0",
            dataset="pvc://voiceflow-data/dev",
            image="ghcr.io/voiceflow/voiceflow-train:0.1.0",
            config="/configs/distill-small.yaml",
            seed=7,
            epochs=3,
            lr=0.0005,
        )
    ),
    "batch": build_batch_workflow(BatchWorkflowParams(**BATCH)),
}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> str:
    """Each rendered workflow in turn (the golden, determinism and schema tests run on all)."""
    name: str = request.param
    return name


def _dump(manifest: dict[str, Any]) -> str:
    return yaml.safe_dump(manifest, sort_keys=True, default_flow_style=False)


def test_rendered_yaml_matches_golden_file(case: str) -> None:
    path = GOLDEN / f"{case}.yaml"
    rendered = _dump(CASES[case])
    if REGEN:
        if os.environ.get("CI"):
            pytest.fail("golden files are never regenerated in CI")
        path.write_text(rendered)
    assert path.exists(), f"missing {path}; run VOICEFLOW_REGEN_GOLDEN=1 pytest tests/workflows"
    assert rendered == path.read_text(), f"{case} changed; regenerate on purpose and review the diff"


def test_rendering_is_deterministic(case: str) -> None:
    assert _dump(CASES[case]) == _dump(CASES[case])


def test_workflow_is_valid_for_the_argo_crd(case: str) -> None:
    # Validated against the vendored Argo Workflow CRD schema (tests/operator helpers).
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
    from vf_k8s_schema import validate_custom

    assert validate_custom(CASES[case]) == []


def test_training_dag_order() -> None:
    wf = CASES["training-preset"]
    (dag,) = [t for t in wf["spec"]["templates"] if "dag" in t]
    order = [(t["name"], t.get("depends")) for t in dag["dag"]["tasks"]]
    assert order == [
        ("prepare", None),
        ("train", "prepare"),
        ("export", "train"),
        ("evaluate", "export"),
        ("register", "evaluate"),
    ]
    params = {p["name"] for p in wf["spec"]["arguments"]["parameters"]}
    assert {"version", "config", "dataset", "image"} <= params


def _steps(case: str) -> list[tuple[str, list[str]]]:
    wf = CASES[case]
    values = {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}
    out = []
    for t in wf["spec"]["templates"]:
        if "container" in t:
            c = t["container"]
            assert c["command"] == ["voiceflow"], t["name"]
            assert c["image"] == "{{workflow.parameters.image}}"
            out.append((f"{case}/{t['name']}", substitute(c["args"], values)))
    return out


STEPS = [s for case in sorted(CASES) for s in _steps(case)]


@pytest.mark.parametrize(("where", "args"), STEPS, ids=[s[0] for s in STEPS])
def test_every_step_is_a_real_voiceflow_command(where: str, args: list[str]) -> None:
    check_argv(args, where)


def test_every_declared_step_command_is_rendered_somewhere() -> None:
    rendered = {args[0] for _, args in STEPS}
    assert {s.args[0] for s in STEP_COMMANDS} == rendered


def test_module_renders_yaml_for_argo_submit(capsys: pytest.CaptureFixture[str]) -> None:
    from voiceflow_workflows.__main__ import main

    flags = [arg for key, value in BATCH.items() for arg in (f"--{key}", str(value))]
    assert main(["batch", *flags]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == CASES["batch"]
