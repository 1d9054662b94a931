"""Run the real Kopf operator in-process against the ClusterEmulator, and play the controllers
that are missing there (Argo, the Job and Deployment controllers, KServe)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from kmock import Server
from vf_kube_emulator import ClusterEmulator, Grant
from voiceflow_operator.handlers import OperatorConfig, run_operator
from voiceflow_operator.kube import ConnectionSettings
from voiceflow_operator.rbac import rbac_rules

from tests.polling import polls

NS = "default"
DM = "voiceflow.io/v1alpha1/diarizationmodels"
WORKFLOWS = "argoproj.io/v1alpha1/workflows"
JOBS = "batch/v1/jobs"
DEPLOYMENTS = "apps/v1/deployments"
SERVICES = "v1/services"
ROUTES = "gateway.networking.k8s.io/v1/httproutes"
SCALERS = "keda.sh/v1alpha1/scaledobjects"
ISVCS = "serving.kserve.io/v1beta1/inferenceservices"
EVENTS = "v1/events"
LABEL = "voiceflow.io/model"


class OperatorProcess:
    """One run of the operator; stop() is what a killed pod looks like to the cluster."""

    def __init__(self, server_url: str, **overrides: Any) -> None:
        self.config = OperatorConfig(
            connection=ConnectionSettings(server=server_url, insecure=True),
            namespaces=[NS],
            interval_s=0.2,
            backoff_base_s=0.3,
            scanning_disabled=True,
            **overrides,
        )
        self.stop_flag = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> OperatorProcess:
        self.task = asyncio.create_task(run_operator(self.config, self.stop_flag))
        return self

    async def kill(self) -> None:
        """No graceful shutdown: the task is cancelled wherever it is (a SIGKILLed pod)."""
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task

    async def stop(self) -> None:
        assert self.task is not None
        self.stop_flag.set()
        try:
            await asyncio.wait_for(self.task, timeout=10)
        except (TimeoutError, asyncio.CancelledError):
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task


def operator_grants() -> frozenset[Grant]:
    """What the chart's RBAC grants the operator (files/operator-rbac.json is rbac_rules())."""
    return frozenset((g, r, v) for g, r, verbs in rbac_rules() for v in verbs)


@contextlib.asynccontextmanager
async def cluster() -> AsyncIterator[tuple[ClusterEmulator, str]]:
    """The emulator, authorizing the operator's requests with exactly its declared RBAC."""
    async with ClusterEmulator(grants=operator_grants()) as emu, Server(emu) as server:
        emu.declare_resources()
        await emu.create_object("v1/namespaces", "", {"metadata": {"name": NS}})
        try:
            yield emu, str(server.url).rstrip("/")
        finally:
            # Checked even when the scenario failed: a 403 is the likeliest reason it stalled.
            assert not emu.denied, f"the operator was forbidden by its RBAC: {sorted(set(emu.denied))}"


@contextlib.asynccontextmanager
async def operator_running(**overrides: Any) -> AsyncIterator[ClusterEmulator]:
    """The emulator with one operator run against it, stopped gracefully however the scenario ends."""
    async with cluster() as (emu, url):
        op = OperatorProcess(url, **overrides).start()
        try:
            yield emu
        finally:
            await op.stop()


async def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    for _ in polls(timeout, f"timed out waiting for {what}"):
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)


def condition(body: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    for c in ((body or {}).get("status") or {}).get("conditions") or ():
        if c["type"] == ctype:
            return c
    return None


def owned(emu: ClusterEmulator, res: str, model: str) -> list[dict[str, Any]]:
    return [o for o in emu.list(res, NS) if o["metadata"].get("labels", {}).get(LABEL) == model]


# --- the controllers the emulator lacks ---------------------------------------------------------


async def finish_workflow(emu: ClusterEmulator, name: str, der: float = 0.12) -> None:
    # The shape `voiceflow evaluate --model M --json-out F` writes, as Argo's output parameter.
    metrics = json.dumps(
        {
            "model": {
                "mean_der": der,
                "speed": {"ms_per_window_b32": 1.5},
                "der": {"ami-dev": {"der": der, "der_collar_0.25": der / 2}},
            }
        }
    )
    await emu.patch_object(
        WORKFLOWS,
        NS,
        name,
        {
            "status": {
                "phase": "Succeeded",
                "nodes": {
                    f"{name}-1": {
                        "templateName": "evaluate",
                        "outputs": {"parameters": [{"name": "metrics", "value": metrics}]},
                    }
                },
            }
        },
    )


async def fail_workflow(emu: ClusterEmulator, name: str, message: str) -> None:
    await emu.patch_object(WORKFLOWS, NS, name, {"status": {"phase": "Failed", "message": message}})


async def finish_job(emu: ClusterEmulator, name: str) -> None:
    await emu.patch_object(
        JOBS,
        NS,
        name,
        {"status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}},
        status=True,
    )


async def observe(emu: ClusterEmulator, res: str, name: str, status: dict[str, Any]) -> None:
    """Plays the child's controller: `status`, as observed for the child's current generation."""
    child = emu.get(res, NS, name)
    assert child is not None, name
    observed = {"observedGeneration": child["metadata"]["generation"], **status}
    await emu.patch_object(res, NS, name, {"status": observed}, status=True)


# What the Deployment controller reports for a rollout that finished, and for one that hit its deadline.
ROLLED_OUT = {
    "replicas": 1,
    "availableReplicas": 1,
    "updatedReplicas": 1,
    "conditions": [
        {"type": "Available", "status": "True"},
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
    ],
}
STALLED = {
    "availableReplicas": 0,
    "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}],
}


async def make_available(emu: ClusterEmulator, name: str) -> None:
    await observe(emu, DEPLOYMENTS, name, ROLLED_OUT)


async def stall(emu: ClusterEmulator, name: str) -> None:
    await observe(emu, DEPLOYMENTS, name, STALLED)


def route_weights(emu: ClusterEmulator, name: str) -> list[int] | None:
    route = emu.get(ROUTES, NS, name)
    if route is None:
        return None
    return [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]]


def deployment_version(emu: ClusterEmulator, name: str) -> str | None:
    dep = emu.get(DEPLOYMENTS, NS, name)
    return None if dep is None else dep["metadata"]["labels"].get("voiceflow.io/version")
