"""The DiarizationModel CRD: well-formed, structural, and admitting exactly what it should."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml
from vf_k8s_schema import CRD_PATH, admit, load_crd, served_schema, structural_problems
from voiceflow_operator.constants import GROUP, KIND, PLURAL, VERSION

EXAMPLES = Path(CRD_PATH).parent / "examples"
INVALID = sorted((EXAMPLES / "invalid").glob("*.yaml"))
VALID = sorted(EXAMPLES.glob("*.yaml"))


def _crd() -> dict:
    return load_crd(CRD_PATH)


def test_crd_is_a_valid_v1_customresourcedefinition() -> None:
    import kubernetes_validate

    kubernetes_validate.validate(_crd(), "1.30.0", strict=True)


def test_crd_names_scope_and_version_match_the_operator() -> None:
    crd = _crd()
    assert crd["metadata"]["name"] == f"{PLURAL}.{GROUP}"
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == (KIND, PLURAL, ["dm"])
    assert crd["spec"]["scope"] == "Namespaced"
    (version,) = crd["spec"]["versions"]
    assert version["name"] == VERSION and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Phase", "Ready", "Desired", "Served", "Canary %", "DER", "Age"]


def test_kubectl_get_dm_shows_the_served_version_beside_the_desired_one() -> None:
    """The printer columns read fields the schema keeps and the operator writes: once a version is
    serving, `kubectl get dm` shows it under SERVED beside spec.version under DESIRED."""
    import datetime as dt

    from vf_scenarios import example_body
    from voiceflow_operator import children as ch
    from voiceflow_operator.reconcile import decide

    (version,) = _crd()["spec"]["versions"]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert (columns["Desired"], columns["Served"]) == (".spec.version", ".status.servedVersion")
    status_fields = served_schema(_crd(), VERSION)["properties"]["status"]["properties"]
    assert "servedVersion" in status_fields, "a field the schema lacks is pruned: the column would stay empty"

    body = example_body("serve-segmentation-streaming.yaml")
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    deployment = decide(body, {}, now).ensure[ch.STABLE_DEPLOY]
    deployment["metadata"]["generation"] = 1
    deployment["status"] = {
        "observedGeneration": 1,
        "availableReplicas": 1,
        "conditions": [{"type": "Available", "status": "True"}],
    }
    status = decide(body, {ch.STABLE_DEPLOY: deployment}, now).status
    row = {**body, "status": status}

    def column(path: str) -> object:
        value: object = row
        for key in path.strip(".").split("."):
            value = value.get(key) if isinstance(value, dict) else None
        return value

    assert status["phase"] == "Ready"
    assert column(columns["Served"]) == column(columns["Desired"]) == body["spec"]["version"] == "1.0.0"


def test_schema_is_structural_and_valid_json_schema() -> None:
    schema = served_schema(_crd(), VERSION)
    assert structural_problems(schema) == []
    jsonschema.Draft4Validator.check_schema(schema)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_examples_are_admitted(path: Path) -> None:
    obj = yaml.safe_load(path.read_text())
    defaulted, errors = admit(obj)
    assert errors == []
    # Defaults land where the operator expects them.
    assert defaulted["spec"]["serving"]["canary"]["trafficPercent"] in (10, 20)
    assert defaulted["spec"]["serving"]["autoscaling"]["minReplicas"] >= 1


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_examples_are_refused_with_their_reason(path: Path) -> None:
    text = path.read_text()
    expected = text.splitlines()[0].removeprefix("# expect:").strip()
    _, errors = admit(yaml.safe_load(text))
    assert errors, f"{path.name} was admitted"
    assert any(expected in e for e in errors), errors


def test_there_are_invalid_examples_for_every_cel_rule() -> None:
    messages = []

    def walk(node: dict) -> None:
        messages.extend(v["message"] for v in node.get("x-kubernetes-validations") or ())
        for sub in (node.get("properties") or {}).values():
            walk(sub)

    walk(served_schema(_crd(), VERSION))
    expects = [p.read_text().splitlines()[0].removeprefix("# expect:").strip() for p in INVALID]
    # The one transition rule (serving.mode immutable) is exercised in the test below.
    stateless = [m for m in messages if "immutable" not in m]
    missing = [m for m in stateless if not any(e in m for e in expects)]
    assert not missing


def _minimal() -> dict:
    return yaml.safe_load((EXAMPLES / "serve-existing-kserve.yaml").read_text())


def test_serving_mode_is_immutable_on_update() -> None:
    old = _minimal()
    new = copy.deepcopy(old)
    new["spec"]["serving"]["mode"] = "streaming"
    _, errors = admit(new, old=old)
    assert any("spec.serving.mode is immutable" in e for e in errors)
    same = copy.deepcopy(old)
    same["spec"]["version"] = "0.9.2"  # a new version is the normal rollout path
    assert admit(same, old=old)[1] == []


def test_mode_may_be_set_when_it_was_defaulted_before() -> None:
    old = _minimal()
    del old["spec"]["serving"]["mode"]
    new = copy.deepcopy(old)
    new["spec"]["serving"]["mode"] = "streaming"  # the default: no change after defaulting
    assert admit(new, old=old)[1] == []


# --- spec.serving.pipeline --------------------------------------------------------------------


def _pipeline_schema() -> dict:
    return served_schema(_crd(), VERSION)["properties"]["spec"]["properties"]["serving"]["properties"]["pipeline"]


def test_pipeline_enum_is_the_operators_and_the_engines() -> None:
    from voiceflow_operator.constants import DEFAULT_SERVING_PIPELINE, SERVING_PIPELINES

    schema = _pipeline_schema()
    assert tuple(schema["enum"]) == SERVING_PIPELINES
    assert schema["default"] == DEFAULT_SERVING_PIPELINE == "embedding"
    assert "second speaker" in schema["description"]
    config = pytest.importorskip("voiceflow.config")
    assert config.PIPELINES == SERVING_PIPELINES and config.DEFAULT_PIPELINE == DEFAULT_SERVING_PIPELINE


def test_pipeline_is_defaulted_to_embedding() -> None:
    defaulted, errors = admit(_minimal())
    assert errors == [] and defaulted["spec"]["serving"]["pipeline"] == "embedding"


@pytest.mark.parametrize("pipeline", ["embedding", "segmentation", "embedding-overlap"])
def test_every_pipeline_is_admitted(pipeline: str) -> None:
    obj = _minimal()
    obj["spec"]["serving"]["pipeline"] = pipeline
    defaulted, errors = admit(obj)
    assert errors == [] and defaulted["spec"]["serving"]["pipeline"] == pipeline


@pytest.mark.parametrize("pipeline", ["diart", "Embedding", "", 3])
def test_unknown_pipelines_are_refused_by_the_schema(pipeline: object) -> None:
    obj = _minimal()
    obj["spec"]["serving"]["pipeline"] = pipeline
    assert admit(obj)[1]


def test_pipeline_may_change_on_update() -> None:
    """Not immutable (unlike serving.mode): a change rolls the serving pods."""
    old = _minimal()
    new = copy.deepcopy(old)
    new["spec"]["serving"]["pipeline"] = "segmentation"
    assert admit(new, old=old)[1] == []
    assert admit(old, old=new)[1] == []
