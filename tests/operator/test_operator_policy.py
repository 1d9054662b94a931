"""What a DiarizationModel may ask of the cluster (issue 26): images, datasets, resources.

Checked three ways: the CRD's schema and CEL rules (vf_k8s_schema, as the API server would), the
operator's own policy (voiceflow_operator.policy, the installation's allow-lists and maxima), and the
real Kopf operator against the API emulator (a spec breaking the policy fails, nothing is created).
"""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from vf_k8s_schema import admit
from vf_operator_harness import DM, NS, WORKFLOWS, condition, operator_running, owned, wait_for
from voiceflow_operator import children as ch
from voiceflow_operator.policy import Policy, PolicyError, check_dataset, check_resources, parse_quantity
from voiceflow_operator.reconcile import decide

T0 = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)


def model(**training: Any) -> dict[str, Any]:
    return {
        "apiVersion": "voiceflow.io/v1alpha1",
        "kind": "DiarizationModel",
        "metadata": {"name": "m", "namespace": NS, "uid": "u1", "generation": 1},
        "spec": {"version": "1.0.0", "training": {"dataset": "s3://data/ami", **training}},
    }


@pytest.mark.parametrize(
    ("training", "reason"),
    [
        ({"dataset": "file:///etc/shadow"}, "outside the allowed dataset roots"),
        ({"dataset": "file:///data/../etc/shadow"}, "'..'"),
        ({"dataset": "http://mirror.example/audio"}, "scheme 'http'"),
        ({"image": "attacker/miner:latest"}, "spec.training.image 'attacker/miner:latest' is not allowed"),
        ({"resources": {"limits": {"memory": "2Ti"}}}, "spec.training.resources.limits.memory 2Ti is above"),
        ({"resources": {"requests": {"nvidia.com/gpu": 8}}}, "nvidia.com/gpu 8 is above"),
        ({"resources": {"requests": {"cpu": "4"}, "limits": {"cpu": "2"}}}, "requests.cpu is above its limit"),
    ],
)
def test_specs_beyond_the_policy_fail_before_anything_is_created(training: dict[str, Any], reason: str) -> None:
    plan = decide(model(**training), {}, T0)
    assert plan.permanent_error and reason in plan.permanent_error, plan.permanent_error
    assert plan.status["phase"] == "Failed"
    assert not plan.ensure  # no Workflow, Job or Deployment for a refused spec


def test_serving_replicas_are_bounded_by_the_policy() -> None:
    body = model()
    body["spec"]["serving"] = {"autoscaling": {"minReplicas": 1, "maxReplicas": 50}}
    plan = decide(body, {}, T0)
    assert plan.permanent_error and "maxReplicas 50 is above this installation's maximum of 20" in plan.permanent_error
    assert decide(body, {}, T0, policy=Policy(max_replicas=50)).permanent_error is None


def test_what_the_installation_allows_is_accepted() -> None:
    policy = Policy(allowed_images=("registry.example/voiceflow/",), dataset_roots=("/mnt/audio",))
    body = model(
        dataset="file:///mnt/audio/ami",
        image="registry.example/voiceflow/pipelines:2",
        resources={"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
    )
    plan = decide(body, {}, T0, policy=policy)
    assert plan.permanent_error is None
    assert ch.WORKFLOW in plan.ensure
    assert decide(model(), {}, T0).permanent_error is None  # the operator's own default images always pass


def test_quantities_parse_like_kubernetes() -> None:
    assert parse_quantity("500m") == Decimal("0.5")
    assert parse_quantity("1.5Gi") == Decimal(3 * 2**29)
    assert parse_quantity(2) == 2 and parse_quantity("1e3") == 1000 and parse_quantity("1k") == 1000
    with pytest.raises(PolicyError):
        parse_quantity("lots")
    with pytest.raises(PolicyError, match="host"):
        check_dataset("d", "file://etc/shadow", Policy())
    check_resources("r", {"limits": {"ephemeral-storage": "100Gi"}}, Policy())  # not bounded by the policy


@pytest.mark.parametrize(
    ("dataset", "admitted"),
    [
        ("s3://data/ami", True),
        ("file:///data/ami", True),
        ("file:///etc/shadow", True),  # the roots are the installation's: the operator refuses it
        ("file:///data/../etc/shadow", False),
        ("file://etc/shadow", False),
        ("http://mirror.example/audio", False),
    ],
)
def test_crd_refuses_what_it_can_express_for_every_cluster(dataset: str, admitted: bool) -> None:
    body = model(dataset=dataset)
    body["metadata"] = {"name": "m"}
    _, errors = admit(body)
    assert (errors == []) is admitted, errors


async def test_operator_refuses_a_forbidden_dataset_against_the_api_emulator() -> None:
    async with operator_running() as emu:
        bad = copy.deepcopy(model(dataset="file:///etc/shadow", image="attacker/miner:1"))
        bad["metadata"] = {"name": "m", "namespace": NS}
        await emu.create_object(DM, NS, bad)
        await wait_for("Failed", lambda: ((emu.get(DM, NS, "m") or {}).get("status") or {}).get("phase") == "Failed")
        ready = condition(emu.get(DM, NS, "m"), "Ready")
        assert ready is not None and ready["reason"] == "InvalidSpec", ready
        assert "not allowed" in ready["message"] or "outside the allowed dataset roots" in ready["message"]
        assert owned(emu, WORKFLOWS, "m") == []
