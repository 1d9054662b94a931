"""Each platform contract is spelled once (voiceflow.contracts), and the CRD's schema agrees with it."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from voiceflow import contracts, registry

ROOT = Path(__file__).resolve().parents[1]
CRD = ROOT / "crds" / "diarizationmodels.voiceflow.io.yaml"


def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    assert crd["spec"]["group"] == contracts.GROUP
    assert crd["spec"]["names"]["plural"] == contracts.PLURAL and crd["spec"]["names"]["kind"] == contracts.KIND
    (served,) = [v for v in crd["spec"]["versions"] if v["served"]]
    assert served["name"] == contracts.VERSION
    return dict(served["schema"]["openAPIV3Schema"])


def test_crd_enums_and_fields_are_the_contracts() -> None:
    spec = crd_schema()["properties"]["spec"]["properties"]
    training = spec["training"]["properties"]
    assert tuple(training["preset"]["enum"]) == contracts.TRAINING_PRESETS
    assert tuple(training["hyperparameters"]["properties"]) == contracts.HYPERPARAMETERS
    assert tuple(spec["export"]["properties"]["quantize"]["enum"]) == contracts.QUANTIZATIONS
    pipeline = spec["serving"]["properties"]["pipeline"]
    assert tuple(pipeline["enum"]) == registry.PIPELINES and pipeline["default"] == registry.DEFAULT_PIPELINE


def test_pipeline_names_are_spelled_in_one_python_module() -> None:
    """The CLI, the operator, the pod and the engine take them from voiceflow.registry: no other
    code has a string that is a pipeline's name (the one name no other concept shares)."""
    packages = ["voiceflow", "voiceflow_cli", "inference_pod", "voiceflow_workflows", "control_api", "operator"]
    spelled = sorted(
        str(path.relative_to(ROOT))
        for package in packages
        for path in (ROOT / package).rglob("*.py")
        if any(
            isinstance(node, ast.Constant) and node.value == "embedding-overlap"
            for node in ast.walk(ast.parse(path.read_text()))
        )
    )
    assert spelled == ["voiceflow/registry.py"], spelled


def test_every_preset_the_crd_offers_ships_with_the_package() -> None:
    from pipelines.training.config import PRESETS_DIR

    for preset in contracts.TRAINING_PRESETS:
        assert (PRESETS_DIR / f"{preset}.yaml").is_file(), preset


def test_the_api_group_is_spelled_in_one_python_module() -> None:
    quoted = re.compile(r"['\"]voiceflow\.io")
    packages = ["voiceflow", "inference_pod", "pipelines", "voiceflow_workflows", "control_api", "operator"]
    spelled = sorted(
        str(path.relative_to(ROOT))
        for package in packages
        for path in (ROOT / package).rglob("*.py")
        if quoted.search(path.read_text())
    )
    assert spelled == ["voiceflow/contracts.py"], spelled


def test_the_gate_refusal_code_is_one_value_everywhere() -> None:
    from pipelines.evaluation import command, register

    sys.modules.setdefault("kopf", __import__("kopf"))
    from voiceflow_operator import reconcile

    assert command.GATE_REFUSED == register.GATE_REFUSED == int(contracts.ExitCode.GATE_REFUSED)
    assert str(int(contracts.ExitCode.GATE_REFUSED)) == reconcile.GATE_REFUSED_EXIT
