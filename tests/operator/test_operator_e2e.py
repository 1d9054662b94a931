"""The real Kopf operator against the API emulator, the tests playing the missing controllers."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from vf_operator_harness import (
    DEPLOYMENTS,
    DM,
    EVENTS,
    ISVCS,
    JOBS,
    NS,
    ROUTES,
    SCALERS,
    SERVICES,
    WORKFLOWS,
    OperatorProcess,
    cluster,
    condition,
    deployment_version,
    fail_workflow,
    finish_job,
    finish_workflow,
    make_available,
    observe,
    operator_running,
    owned,
    route_weights,
    stall,
    wait_for,
)

pytestmark = [pytest.mark.timeout(90)]


def diarization_model(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "voiceflow.io/v1alpha1",
        "kind": "DiarizationModel",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


TRAINED = diarization_model(
    "meetings",
    {
        "version": "1.0.0",
        "training": {
            "dataset": "s3://data/ami",
            "preset": "tiny",
            "artifacts": "pvc://models/meetings",
            "maxRetries": 1,
        },
        "serving": {
            "mode": "streaming",
            "canary": {"trafficPercent": 10, "analysisIntervalSeconds": 1, "healthyChecksToPromote": 2},
        },
    },
)
SERVED = diarization_model(
    "calls",
    {
        "version": "1.0.0",
        "model": {"uri": "s3://models/calls/1.0.0.onnx"},
        "serving": {"canary": {"trafficPercent": 25, "analysisIntervalSeconds": 1, "healthyChecksToPromote": 2}},
    },
)


def dm(emu: Any, name: str) -> dict[str, Any] | None:
    return emu.get(DM, NS, name)


def st(emu: Any, name: str) -> dict[str, Any]:
    return (dm(emu, name) or {}).get("status") or {}


def reconciles(emu: Any) -> int:
    # Every reconcile GETs each child slot: count the lookups of the export Job.
    return sum(
        1 for r in emu if r.method == "GET" and r.resource is not None and r.resource.plural == "jobs" and r.name
    )


def reasons(emu: Any) -> set[str]:
    # Kopf posts Events from a background queue: wait for them rather than assert at once.
    return {e.get("reason") for e in emu.list(EVENTS, NS)}


def is_ready(emu: Any, name: str) -> bool:
    c = condition(dm(emu, name), "Ready")
    return bool(c and c["status"] == "True")


async def serve_v1(emu: Any) -> None:
    """SERVED at 1.0.0, Ready (no training: model.uri)."""
    await emu.create_object(DM, NS, copy.deepcopy(SERVED))
    await wait_for("stable deployment", lambda: emu.get(DEPLOYMENTS, NS, "calls"))
    await make_available(emu, "calls")
    await wait_for("Ready", lambda: is_ready(emu, "calls"))


async def new_version(emu: Any, version: str) -> None:
    await emu.patch_object(
        DM, NS, "calls", {"spec": {"version": version, "model": {"uri": f"s3://models/calls/{version}.onnx"}}}
    )


async def canary_of_v2(emu: Any) -> None:
    """SERVED Ready at 1.0.0, then 2.0.0 submitted: waits for its canary Deployment."""
    await serve_v1(emu)
    await new_version(emu, "2.0.0")
    await wait_for("canary deployment", lambda: emu.get(DEPLOYMENTS, NS, "calls-canary"))


async def test_full_lifecycle_to_ready() -> None:
    async with operator_running() as emu:
        await emu.create_object(DM, NS, copy.deepcopy(TRAINED))
        wf = await wait_for("workflow", lambda: owned(emu, WORKFLOWS, "meetings"))
        await wait_for("Training", lambda: st(emu, "meetings").get("phase") == "Training")
        (wf,) = wf
        assert wf["metadata"]["ownerReferences"][0]["uid"] == dm(emu, "meetings")["metadata"]["uid"]
        assert wf["spec"]["arguments"]["parameters"][0] == {"name": "version", "value": "1.0.0"}

        await finish_workflow(emu, wf["metadata"]["name"], der=0.12)
        (job,) = await wait_for("export job", lambda: owned(emu, JOBS, "meetings"))
        await wait_for("Exporting", lambda: st(emu, "meetings").get("phase") == "Exporting")
        await finish_job(emu, job["metadata"]["name"])

        await wait_for("deployment", lambda: emu.get(DEPLOYMENTS, NS, "meetings"))
        await wait_for("Deploying", lambda: st(emu, "meetings").get("phase") == "Deploying")
        assert emu.get(SERVICES, NS, "meetings") and emu.get(SCALERS, NS, "meetings")
        await make_available(emu, "meetings")
        await wait_for("Ready", lambda: is_ready(emu, "meetings"))

        status = st(emu, "meetings")
        assert status["phase"] == "Ready"
        assert status["servedVersion"] == "1.0.0"
        assert status["metrics"]["der"] == "0.1200"
        assert status["modelUri"] == "pvc://models/meetings/1.0.0/serving"
        assert status["observedGeneration"] == 1
        for ctype in ("Trained", "Exported", "Ready"):
            assert condition(dm(emu, "meetings"), ctype)["status"] == "True"
        assert route_weights(emu, "meetings") == [100]
        await wait_for("events", lambda: {"Trained", "Exported", "Ready"} <= reasons(emu))

        # A spec change bumps the generation and re-renders what it affects, in place.
        await emu.patch_object(
            DM, NS, "meetings", {"spec": {"serving": {"autoscaling": {"minReplicas": 2, "maxReplicas": 9}}}}
        )
        await wait_for("scaler updated", lambda: emu.get(SCALERS, NS, "meetings")["spec"]["maxReplicaCount"] == 9)
        await wait_for("observedGeneration", lambda: st(emu, "meetings").get("observedGeneration") == 2)
        assert condition(dm(emu, "meetings"), "Ready")["observedGeneration"] == 2
        assert len(owned(emu, WORKFLOWS, "meetings")) == 1  # same version: no retraining

        # Level-triggered: a child deleted by hand comes back.
        await emu.delete_object(SERVICES, NS, "meetings")
        await wait_for("service recreated", lambda: emu.get(SERVICES, NS, "meetings"))


async def test_canary_is_promoted_when_healthy() -> None:
    async with operator_running() as emu:
        await canary_of_v2(emu)
        assert deployment_version(emu, "calls-canary") == "2.0.0"
        await wait_for("75/25 split", lambda: route_weights(emu, "calls") == [75, 25])
        await wait_for("Canary", lambda: st(emu, "calls").get("phase") == "Canary")
        assert st(emu, "calls")["canary"]["trafficPercent"] == 25

        await make_available(emu, "calls-canary")
        await wait_for("promotion", lambda: st(emu, "calls").get("servedVersion") == "2.0.0")
        assert st(emu, "calls")["canary"]["state"] == "Promoted"
        assert condition(dm(emu, "calls"), "CanaryHealthy")["reason"] == "Promoted"

        # Stable re-pointed at 2.0.0; the canary keeps its share until stable is available.
        await wait_for("stable at 2.0.0", lambda: deployment_version(emu, "calls") == "2.0.0")
        assert emu.get(DEPLOYMENTS, NS, "calls-canary") is not None
        await make_available(emu, "calls")
        await wait_for("canary removed", lambda: emu.get(DEPLOYMENTS, NS, "calls-canary") is None)
        await wait_for("all traffic stable", lambda: route_weights(emu, "calls") == [100])
        await wait_for("Ready", lambda: st(emu, "calls").get("phase") == "Ready")
        await wait_for("CanaryPromoted event", lambda: "CanaryPromoted" in reasons(emu))


async def test_canary_is_rolled_back_when_it_stalls() -> None:
    async with operator_running() as emu:
        await canary_of_v2(emu)
        await stall(emu, "calls-canary")
        await wait_for("rollback", lambda: st(emu, "calls").get("phase") == "RolledBack")
        status = st(emu, "calls")
        assert status["servedVersion"] == "1.0.0"
        assert status["canary"]["state"] == "RolledBack"
        cond = condition(dm(emu, "calls"), "CanaryHealthy")
        assert (cond["status"], cond["reason"]) == ("False", "CanaryStalled")
        assert "ProgressDeadlineExceeded" in cond["message"]
        await wait_for("canary removed", lambda: emu.get(DEPLOYMENTS, NS, "calls-canary") is None)
        assert route_weights(emu, "calls") == [100]
        assert deployment_version(emu, "calls") == "1.0.0"
        assert condition(dm(emu, "calls"), "Ready")["status"] == "True"
        await wait_for("CanaryRolledBack event", lambda: "CanaryRolledBack" in reasons(emu))


async def test_restart_mid_phase_creates_no_duplicates() -> None:
    async with cluster() as (emu, url):
        op = OperatorProcess(url).start()
        await emu.create_object(DM, NS, copy.deepcopy(TRAINED))
        (wf,) = await wait_for("workflow", lambda: owned(emu, WORKFLOWS, "meetings"))
        await op.stop()  # killed while training

        await finish_workflow(emu, wf["metadata"]["name"])  # the workflow finishes meanwhile
        op = OperatorProcess(url).start()
        try:
            await wait_for("export job", lambda: owned(emu, JOBS, "meetings"))
            await op.kill()  # killed (no graceful shutdown) while exporting
            op = OperatorProcess(url).start()
            await wait_for("status seen again", lambda: st(emu, "meetings").get("phase") == "Exporting")
            # Several reconciles of the restarted operator later, still one of each.
            seen = reconciles(emu)
            await wait_for("three more reconciles", lambda: reconciles(emu) >= seen + 3)
            assert len(owned(emu, WORKFLOWS, "meetings")) == 1
            assert len(owned(emu, JOBS, "meetings")) == 1
            await finish_job(emu, owned(emu, JOBS, "meetings")[0]["metadata"]["name"])
            await wait_for("deployment", lambda: emu.get(DEPLOYMENTS, NS, "meetings"))
            assert len(owned(emu, DEPLOYMENTS, "meetings")) == 1
        finally:
            await op.stop()


async def test_deletion_cascades_and_finalizer_releases() -> None:
    async with operator_running() as emu:
        await serve_v1(emu)
        assert "voiceflow.io/finalizer" in dm(emu, "calls")["metadata"]["finalizers"]
        for res in (DEPLOYMENTS, SERVICES, ROUTES, SCALERS):
            assert owned(emu, res, "calls")
        await emu.delete_object(DM, NS, "calls")
        await wait_for("resource gone", lambda: dm(emu, "calls") is None)
        for res in (DEPLOYMENTS, SERVICES, ROUTES, SCALERS):
            assert owned(emu, res, "calls") == [], res


async def test_workflow_failure_surfaces_in_conditions_and_is_retried() -> None:
    async with operator_running() as emu:
        await emu.create_object(DM, NS, copy.deepcopy(TRAINED))
        (wf,) = await wait_for("workflow", lambda: owned(emu, WORKFLOWS, "meetings"))
        await fail_workflow(emu, wf["metadata"]["name"], "train: OOMKilled (exit code 137)")
        trained = await wait_for(
            "failure condition",
            lambda: (c := condition(dm(emu, "meetings"), "Trained")) and c["reason"] == "WorkflowFailed" and c,
        )
        assert "OOMKilled" in trained["message"] and "retry 1/1" in trained["message"]

        # After the backoff, attempt 1 runs under a new name; it fails too: give up.
        await wait_for("retry", lambda: len(owned(emu, WORKFLOWS, "meetings")) == 2)
        retry = next(w for w in owned(emu, WORKFLOWS, "meetings") if w["metadata"]["name"].endswith("-1"))
        await fail_workflow(emu, retry["metadata"]["name"], "evaluate: DER gate refused (0.31 > 0.20)")
        await wait_for("Failed", lambda: st(emu, "meetings").get("phase") == "Failed")
        trained = condition(dm(emu, "meetings"), "Trained")
        assert "gave up after 2 attempt(s)" in trained["message"] and "DER gate" in trained["message"]
        assert condition(dm(emu, "meetings"), "Ready")["reason"] == "TrainingFailed"
        await wait_for("TrainingFailed event", lambda: "TrainingFailed" in reasons(emu))


async def test_invalid_spec_is_a_permanent_error_in_status() -> None:
    async with operator_running() as emu:
        bad = copy.deepcopy(SERVED)
        bad["spec"]["training"] = {"dataset": "s3://d"}  # and model: exactly one is allowed
        await emu.create_object(DM, NS, bad)
        await wait_for("Failed", lambda: st(emu, "calls").get("phase") == "Failed")
        ready = condition(dm(emu, "calls"), "Ready")
        assert ready["reason"] == "InvalidSpec" and "exactly one of" in ready["message"]
        assert owned(emu, DEPLOYMENTS, "calls") == []


async def test_canary_is_rolled_back_on_prometheus_error_rate() -> None:
    from kmock import RawHandler, Server

    # A fake Prometheus answering every instant query with 0.2 (20% errors, 200 ms P99).
    async with RawHandler() as prom, Server(prom) as prom_server:
        prom["get /api/v1/query"] << {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "0.2"]}]},
        }
        async with operator_running(canary_prometheus_url=str(prom_server.url)) as emu:
            await canary_of_v2(emu)
            await make_available(emu, "calls-canary")  # ready, but its users see errors
            await wait_for("rollback", lambda: st(emu, "calls").get("phase") == "RolledBack")
            cond = condition(dm(emu, "calls"), "CanaryHealthy")
            assert (cond["status"], cond["reason"]) == ("False", "ErrorRateTooHigh")
            assert "0.2000 > 0.0100" in cond["message"]
            queries = [r.params.get("query", "") for r in prom]  # kmock views iterate requests
            assert any("inference_errors_total" in q and 'voiceflow_io_role="canary"' in q for q in queries)
            await wait_for("canary removed", lambda: emu.get(DEPLOYMENTS, NS, "calls-canary") is None)


async def test_kserve_mode_serves_through_an_inference_service() -> None:
    async with operator_running() as emu:
        body = copy.deepcopy(SERVED)
        body["spec"]["serving"]["mode"] = "kserve"
        await emu.create_object(DM, NS, body)
        isvc = await wait_for("inference service", lambda: emu.get(ISVCS, NS, "calls"))
        assert "canaryTrafficPercent" not in isvc["spec"]["predictor"]

        # Playing KServe: the predictor is ready for the current generation.
        async def kserve_ready() -> None:
            await observe(emu, ISVCS, "calls", {"conditions": [{"type": "Ready", "status": "True"}]})

        await kserve_ready()
        await wait_for("Ready", lambda: is_ready(emu, "calls"))

        await new_version(emu, "2.0.0")
        await wait_for(
            "canary split", lambda: emu.get(ISVCS, NS, "calls")["spec"]["predictor"].get("canaryTrafficPercent") == 25
        )
        await asyncio.sleep(1.2)  # an analysis interval passes: the old Ready must not count
        assert st(emu, "calls")["canary"]["healthyChecks"] == 0
        await kserve_ready()  # the new revision is ready
        await wait_for("promotion", lambda: st(emu, "calls").get("servedVersion") == "2.0.0")
        await wait_for(
            "no split", lambda: "canaryTrafficPercent" not in emu.get(ISVCS, NS, "calls")["spec"]["predictor"]
        )
        await kserve_ready()  # the promoted spec (no split) rolls out
        await wait_for(
            "Ready, no canary share",
            lambda: st(emu, "calls").get("phase") == "Ready" and st(emu, "calls")["canary"]["trafficPercent"] == 0,
        )
        assert owned(emu, DEPLOYMENTS, "calls") == []
