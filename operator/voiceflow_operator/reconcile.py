"""The reconcile decision, as one pure function.

`decide(body, observed, now, metrics)` looks at the resource (spec and the progress recorded in
its status) and at its children as they are in the cluster, and returns a Plan: manifests to
ensure, children to delete, Events to post and the next status. All progress lives in the
status, never in operator memory, so a restarted operator makes the same decision again.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from voiceflow.contracts import ExitCode
from voiceflow_operator import children as ch
from voiceflow_operator import naming
from voiceflow_operator.builders import (
    Owner,
    build_deployment,
    build_export_job,
    build_http_route,
    build_inference_service,
    build_scaled_object,
    build_service,
    build_training_workflow_for,
)
from voiceflow_operator.builders.autoscaling import DEFAULT_PROMETHEUS
from voiceflow_operator.canary import (
    CanaryMetrics,
    deployment_ready,
    deployment_stalled,
    inference_service_failed,
    inference_service_ready,
    judge_canary,
)
from voiceflow_operator.conditions import get_condition, set_condition
from voiceflow_operator.constants import CANARY_HEALTHY, EXPORTED, LABEL_VERSION, READY, TRAINED
from voiceflow_operator.policy import Policy, check_spec
from voiceflow_operator.spec import ImageDefaults, ModelSpec, SpecError, parse_spec

Observed = Mapping[str, Mapping[str, Any] | None]

# Retry backoff for failed training workflows: 30 s, 60 s, 120 s, ... capped at 30 min.
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 1800


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Plan:
    ensure: dict[str, dict[str, Any]] = field(default_factory=dict)  # slot -> desired manifest
    delete: list[str] = field(default_factory=list)  # slots
    events: list[Event] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    permanent_error: str | None = None


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def backoff_seconds(attempt: int, base: float = BACKOFF_BASE_SECONDS) -> float:
    return float(min(base * 2 ** max(attempt - 1, 0), BACKOFF_MAX_SECONDS))


class _Ctx:
    """Mutable scratch state of one decision (kept out of the public API)."""

    def __init__(self, body: Mapping[str, Any], now: dt.datetime) -> None:
        self.body = body
        self.owner = Owner.from_body(body)
        self.generation = int(body.get("metadata", {}).get("generation", 1) or 1)
        self.now = now
        self.now_s = iso(now)
        self.status: dict[str, Any] = copy.deepcopy(dict(body.get("status") or {}))
        # Kopf keeps its own bookkeeping under status.kopf when asked to; it is not ours to write.
        self.status.pop("kopf", None)
        self.plan = Plan()

    def cond(self, ctype: str, status: str, reason: str, message: str) -> None:
        self.status["conditions"] = set_condition(
            self.status.get("conditions"), ctype, status, reason, message, self.generation, self.now_s
        )

    def event(self, etype: str, reason: str, message: str) -> None:
        self.plan.events.append(Event(etype, reason, message))


def decide(
    body: Mapping[str, Any],
    observed: Observed,
    now: dt.datetime,
    metrics: CanaryMetrics | None = None,
    prometheus_url: str = DEFAULT_PROMETHEUS,
    backoff_base: float = BACKOFF_BASE_SECONDS,
    images: ImageDefaults | None = None,
    policy: Policy | None = None,
) -> Plan:
    ctx = _Ctx(body, now)
    try:
        spec = parse_spec(body.get("spec") or {}, images)
        # The installation's limits (images, datasets, resources): checked before anything is created.
        check_spec(spec, images, policy or Policy())
    except SpecError as exc:
        ctx.status["phase"] = "Failed"
        ctx.cond(READY, "False", "InvalidSpec", str(exc))
        ctx.plan.permanent_error = str(exc)
        return _finish(ctx)

    model_uri = _model_artifact(ctx, spec, observed, backoff_base)
    if model_uri is None and ctx.status.get("servedVersion"):
        # While a new version trains, the served one keeps serving (and is repaired if touched).
        _keep_serving(ctx, spec, observed, prometheus_url)
    elif model_uri is not None:
        if spec.serving.mode == "streaming":
            _serve_streaming(ctx, spec, model_uri, observed, metrics, prometheus_url)
        else:
            _serve_kserve(ctx, spec, model_uri, observed, metrics)
    return _finish(ctx)


def _finish(ctx: _Ctx) -> Plan:
    ctx.status["observedGeneration"] = ctx.generation
    ctx.plan.status = ctx.status
    return ctx.plan


# --- stage 1: the model artifact for spec.version -------------------------------------------


def _model_artifact(ctx: _Ctx, spec: ModelSpec, observed: Observed, backoff_base: float) -> str | None:
    """Return the served-model URI for spec.version once it exists; meanwhile drive training."""
    st = ctx.status
    if spec.model_uri is not None:
        if st.get("modelVersion") != spec.version:
            ctx.cond(TRAINED, "True", "ModelProvided", "serving spec.model.uri, no training")
            ctx.cond(EXPORTED, "True", "ModelProvided", f"model {spec.model_uri}")
        st.update(modelVersion=spec.version, modelUri=spec.model_uri)
        return spec.model_uri
    if st.get("modelVersion") == spec.version and st.get("modelUri"):
        return str(st["modelUri"])
    assert spec.training is not None
    if st.get("trainingVersion") != spec.version:
        # A new version starts its own attempt count and forgets the previous version's metrics.
        st.update(trainingVersion=spec.version, attempts=0, retryAfter=None, metrics=None)
    if not _trained_for(st, spec.version) and not _train(ctx, spec, observed, backoff_base):
        return None
    return _export(ctx, spec, observed)


def _trained_for(status: Mapping[str, Any], version: str) -> bool:
    c = get_condition(status.get("conditions"), TRAINED)
    return bool(c and c["status"] == "True" and status.get("trainedVersion") == version)


def _train(ctx: _Ctx, spec: ModelSpec, observed: Observed, backoff_base: float) -> bool:
    assert spec.training is not None
    st = ctx.status
    attempt = int(st.get("attempts", 0) or 0)
    wf = observed.get(ch.WORKFLOW)
    if wf is None:
        retry_after = parse_time(st.get("retryAfter"))
        if retry_after is not None and ctx.now < retry_after:
            st["phase"] = "Training"
            return False
        manifest = build_training_workflow_for(ctx.owner, spec, attempt)
        ctx.plan.ensure[ch.WORKFLOW] = manifest
        st.update(phase="Training", workflowName=manifest["metadata"]["name"], retryAfter=None)
        ctx.cond(TRAINED, "False", "WorkflowRunning", f"training workflow {manifest['metadata']['name']}")
        if not st.get("servedVersion"):
            ctx.cond(READY, "False", "Training", f"training version {spec.version}")
        return False
    phase = (wf.get("status") or {}).get("phase") or "Pending"
    wf_name = wf["metadata"]["name"]
    if phase == "Succeeded":
        metrics = workflow_metrics(wf)
        if metrics:
            st["metrics"] = metrics
        st["trainedVersion"] = spec.version
        ctx.cond(TRAINED, "True", "WorkflowSucceeded", f"workflow {wf_name} succeeded")
        ctx.event("Normal", "Trained", f"training workflow {wf_name} succeeded for {spec.version}")
        return True
    if phase in ("Failed", "Error"):
        message = (wf.get("status") or {}).get("message") or phase
        final = get_condition(st.get("conditions"), TRAINED)
        if final and final["reason"] in ("GateRefused", "TrainingFailed") and wf_name in final["message"]:
            return False  # already reported; nothing changes until a new spec.version
        if gate_refused(wf):
            # A refusal is a verdict on the model, not a glitch: retrying would only repeat it.
            metrics = workflow_metrics(wf)
            if metrics:
                st["metrics"] = metrics
            _training_failed(
                ctx,
                "GateRefused",
                f"version {spec.version} refused by the evaluation gate (workflow {wf_name})",
                ready=f"version {spec.version} refused by the gate",
                event=f"version {spec.version} refused by the evaluation gate",
            )
            return False
        if attempt < spec.training.max_retries:
            delay = backoff_seconds(attempt + 1, backoff_base)
            st.update(
                phase="Training",
                attempts=attempt + 1,
                retryAfter=iso(ctx.now + dt.timedelta(seconds=delay)),
            )
            ctx.cond(
                TRAINED,
                "False",
                "WorkflowFailed",
                f"workflow {wf_name} failed: {message}; retry {attempt + 1}/{spec.training.max_retries} "
                f"in {delay:.0f}s",
            )
            ctx.event("Warning", "WorkflowFailed", f"workflow {wf_name} failed: {message}; retrying")
        else:
            _training_failed(
                ctx,
                "TrainingFailed",
                f"workflow {wf_name} failed: {message}; gave up after {attempt + 1} attempt(s)",
                ready=f"training failed: {message}",
                event=f"workflow {wf_name} failed: {message}",
            )
        return False
    st.update(phase="Training", workflowName=wf_name)
    ctx.cond(TRAINED, "False", "WorkflowRunning", f"workflow {wf_name} is {phase}")
    return False


def _training_failed(ctx: _Ctx, reason: str, message: str, *, ready: str, event: str) -> None:
    """spec.version will not be trained again: phase Failed (it describes spec.version), Trained False, and
    Ready False too unless an older version still serves (then Ready stays True)."""
    ctx.status["phase"] = "Failed"
    ctx.cond(TRAINED, "False", reason, message)
    if not ctx.status.get("servedVersion"):
        ctx.cond(READY, "False", reason, ready)
    ctx.event("Warning", reason, event)


def workflow_metrics(wf: Mapping[str, Any]) -> dict[str, str]:
    """The evaluate step's metrics.json (its `metrics` output parameter) as status strings.

    `voiceflow evaluate --json-out` writes {"model": report, "baseline": ..., "gate": ...}, the
    report holding mean_der, der[set]["der_collar_0.25"] and speed.ms_per_window_b32.
    """
    for node in ((wf.get("status") or {}).get("nodes") or {}).values():
        if node.get("templateName") != "evaluate":
            continue
        for p in (node.get("outputs") or {}).get("parameters") or ():
            if p.get("name") == "metrics" and p.get("value"):
                try:
                    return _summarise(json.loads(p["value"]))
                except (ValueError, TypeError, KeyError, AttributeError):
                    return {}
    return {}


def _summarise(raw: Mapping[str, Any]) -> dict[str, str]:
    report = raw.get("model", raw)
    out: dict[str, float] = {}
    if "mean_der" in report:
        out["der"] = float(report["mean_der"])
    rows = report.get("der")
    if isinstance(rows, Mapping):
        collar = [r["der_collar_0.25"] for r in rows.values() if "der_collar_0.25" in r]
        if collar:
            out["derCollar"] = sum(collar) / len(collar)
    speed = (report.get("speed") or {}).get("ms_per_window_b32")
    if speed is not None:
        out["msPerWindow"] = float(speed)
    return {k: f"{v:.4f}" for k, v in out.items()}


GATE_REFUSED_EXIT = str(int(ExitCode.GATE_REFUSED))  # how Argo reports the register node's exit code


def gate_refused(wf: Mapping[str, Any]) -> bool:
    for node in ((wf.get("status") or {}).get("nodes") or {}).values():
        if (
            node.get("templateName") == "register"
            and str((node.get("outputs") or {}).get("exitCode")) == GATE_REFUSED_EXIT
        ):
            return True
    return False


def _export(ctx: _Ctx, spec: ModelSpec, observed: Observed) -> str | None:
    assert spec.training is not None
    st = ctx.status
    job = observed.get(ch.EXPORT)
    if job is None:
        manifest = build_export_job(ctx.owner, spec)
        ctx.plan.ensure[ch.EXPORT] = manifest
        st.update(phase="Exporting", exportJobName=manifest["metadata"]["name"])
        ctx.cond(EXPORTED, "False", "ExportRunning", f"export job {manifest['metadata']['name']}")
        return None
    js = job.get("status") or {}
    conds = {c.get("type"): c for c in js.get("conditions") or ()}
    name = job["metadata"]["name"]
    if int(js.get("succeeded", 0) or 0) >= 1 or conds.get("Complete", {}).get("status") == "True":
        uri = naming.model_store_uri(spec.training.artifacts, spec.version)
        st.update(modelVersion=spec.version, modelUri=uri)
        ctx.cond(EXPORTED, "True", "ExportSucceeded", f"model exported to {uri}")
        ctx.event("Normal", "Exported", f"export job {name} wrote {uri}")
        return uri
    if conds.get("Failed", {}).get("status") == "True":
        message = conds["Failed"].get("message") or conds["Failed"].get("reason") or "failed"
        st["phase"] = "Failed"
        ctx.cond(EXPORTED, "False", "ExportFailed", f"export job {name} failed: {message}")
        ctx.event("Warning", "ExportFailed", f"export job {name} failed: {message}")
        return None
    st["phase"] = "Exporting"
    return None


# --- stage 2: serving ------------------------------------------------------------------------


def _ensure_stable_streaming(ctx: _Ctx, spec: ModelSpec, version: str, uri: str, prometheus_url: str) -> None:
    owner, stable = ctx.owner, naming.stable_name(ctx.owner.name)
    ctx.plan.ensure[ch.STABLE_DEPLOY] = build_deployment(owner, spec, stable, "stable", version, uri)
    ctx.plan.ensure[ch.STABLE_SVC] = build_service(owner, stable, "stable")
    ctx.plan.ensure[ch.STABLE_SCALER] = build_scaled_object(owner, spec, stable, stable, "stable", prometheus_url)


def _route(ctx: _Ctx, spec: ModelSpec, weight: int) -> None:
    stable, canary = naming.stable_name(ctx.owner.name), naming.canary_name(ctx.owner.name)
    ctx.plan.ensure[ch.ROUTE] = build_http_route(ctx.owner, spec, stable, stable, canary, weight)


def _keep_serving(ctx: _Ctx, spec: ModelSpec, observed: Observed, prometheus_url: str) -> None:
    served, uri = str(ctx.status["servedVersion"]), str(ctx.status.get("servedModelUri") or "")
    if spec.serving.mode == "streaming":
        _ensure_stable_streaming(ctx, spec, served, uri, prometheus_url)
        _route(ctx, spec, 0)
    else:
        name = naming.stable_name(ctx.owner.name)
        ctx.plan.ensure[ch.ISVC] = build_inference_service(ctx.owner, spec, name, served, uri, None)


def _serve_streaming(
    ctx: _Ctx,
    spec: ModelSpec,
    model_uri: str,
    observed: Observed,
    metrics: CanaryMetrics | None,
    prometheus_url: str,
) -> None:
    st, owner = ctx.status, ctx.owner
    stable, canary = naming.stable_name(owner.name), naming.canary_name(owner.name)
    served = st.get("servedVersion")
    target = spec.version

    def ensure_stable(version: str, uri: str) -> None:
        _ensure_stable_streaming(ctx, spec, version, uri, prometheus_url)

    def route(weight: int) -> None:
        _route(ctx, spec, weight)

    def drop_canary() -> None:
        for slot in (ch.CANARY_DEPLOY, ch.CANARY_SVC, ch.CANARY_SCALER):
            if observed.get(slot) is not None:
                ctx.plan.delete.append(slot)

    rolled_back = _rolled_back(st, target)
    if served is None or served == target or rolled_back:
        version = target if served is None else served
        uri = model_uri if served is None else str(st.get("servedModelUri") or model_uri)
        ensure_stable(version, uri)
        stable_ok = deployment_ready(observed.get(ch.STABLE_DEPLOY), version)
        if observed.get(ch.CANARY_DEPLOY) is not None and not stable_ok and not rolled_back:
            # Just promoted: keep the canary taking its share until the stable pods run the
            # new version, so promotion never drops capacity.
            route(int((st.get("canary") or {}).get("trafficPercent", 0) or 0))
        else:
            route(0)
            drop_canary()
        if stable_ok and not rolled_back and st.get("phase") != "Ready":
            ctx.event("Normal", "Ready", f"version {version} is serving")
        waiting_for = f"deployment {stable} to become available"
        _without_canary(ctx, version, uri, stable_ok, rolled_back, f"{stable} (streaming)", waiting_for)
        return

    # A new version while an older one serves: canary.
    ensure_stable(str(served), str(st.get("servedModelUri") or ""))
    ctx.plan.ensure[ch.CANARY_DEPLOY] = build_deployment(owner, spec, canary, "canary", target, model_uri)
    ctx.plan.ensure[ch.CANARY_SVC] = build_service(owner, canary, "canary")
    ctx.plan.ensure[ch.CANARY_SCALER] = build_scaled_object(owner, spec, canary, canary, "canary", prometheus_url)
    verdict_state = _canary_step(
        ctx,
        spec,
        target,
        model_uri,
        ready=deployment_ready(observed.get(ch.CANARY_DEPLOY), target),
        stalled=deployment_stalled(observed.get(ch.CANARY_DEPLOY)),
        metrics=metrics,
    )
    if verdict_state == "RolledBack":
        route(0)
        drop_canary()
    else:
        route(int(st["canary"]["trafficPercent"]))


def _rolled_back(status: Mapping[str, Any], target: str) -> bool:
    """`target` was tried as a canary and rolled back: it is not retried until the spec names another version."""
    canary = status.get("canary") or {}
    return bool(canary.get("state") == "RolledBack" and canary.get("version") == target)


def _without_canary(
    ctx: _Ctx, version: str, uri: str, ok: bool, rolled_back: bool, serving_with: str, waiting_for: str
) -> None:
    """Status while one version serves with no canary running: rolled back, Ready, or still deploying."""
    st = ctx.status
    if rolled_back:
        st["phase"] = "RolledBack"
        ctx.cond(READY, "True" if ok else "False", "StableServing", f"serving {version}")
    elif ok:
        st.update(phase="Ready", servedVersion=version, servedModelUri=uri)
        ctx.cond(READY, "True", "Serving", f"version {version} serving with {serving_with}")
        if st.get("canary"):
            st["canary"] = {**st["canary"], "trafficPercent": 0}
    else:
        st["phase"] = "Deploying"
        ctx.cond(READY, "False", "Deploying", f"waiting for {waiting_for}")


def _canary_step(
    ctx: _Ctx,
    spec: ModelSpec,
    target: str,
    model_uri: str,
    ready: bool,
    stalled: str | None,
    metrics: CanaryMetrics | None,
) -> str:
    """Advance the canary analysis one step; returns the canary state."""
    st, policy = ctx.status, spec.serving.canary
    cs = dict(st.get("canary") or {})
    if cs.get("version") != target or cs.get("state") != "Progressing":
        cs = {
            "version": target,
            "modelUri": model_uri,
            "trafficPercent": policy.traffic_percent,
            "state": "Progressing",
            "healthyChecks": 0,
            "startTime": ctx.now_s,
            "reason": "CanaryStarted",
            "message": f"{policy.traffic_percent}% of new sessions to {target}",
        }
        ctx.event("Normal", "CanaryStarted", cs["message"])
        ctx.cond(CANARY_HEALTHY, "Unknown", "CanaryStarted", cs["message"])
    st["phase"] = "Canary"
    last = parse_time(cs.get("lastCheckTime"))
    due = last is None or (ctx.now - last).total_seconds() >= policy.analysis_interval_seconds
    if due:
        started = parse_time(cs.get("startTime")) or ctx.now
        verdict = judge_canary(ready, stalled, metrics, (ctx.now - started).total_seconds(), policy)
        cs["lastCheckTime"] = ctx.now_s
        if verdict.outcome == "healthy":
            cs["healthyChecks"] = int(cs.get("healthyChecks", 0)) + 1
            cs.update(reason=verdict.reason, message=verdict.message)
            ctx.cond(
                CANARY_HEALTHY,
                "True",
                verdict.reason,
                f"{verdict.message} ({cs['healthyChecks']}/{policy.healthy_checks_to_promote})",
            )
            if cs["healthyChecks"] >= policy.healthy_checks_to_promote:
                cs.update(state="Promoted", reason="Promoted", message=f"{target} promoted")
                st.update(servedVersion=target, servedModelUri=model_uri)
                ctx.cond(CANARY_HEALTHY, "True", "Promoted", f"{target} passed {cs['healthyChecks']} checks")
                ctx.event("Normal", "CanaryPromoted", f"version {target} promoted to stable")
        elif verdict.outcome == "unhealthy":
            cs.update(state="RolledBack", reason=verdict.reason, message=verdict.message, trafficPercent=0)
            st["phase"] = "RolledBack"
            ctx.cond(CANARY_HEALTHY, "False", verdict.reason, verdict.message)
            ctx.event("Warning", "CanaryRolledBack", f"version {target} rolled back: {verdict.message}")
    st["canary"] = cs
    return str(cs["state"])


def _serve_kserve(
    ctx: _Ctx,
    spec: ModelSpec,
    model_uri: str,
    observed: Observed,
    metrics: CanaryMetrics | None,
) -> None:
    st, owner = ctx.status, ctx.owner
    name = naming.stable_name(owner.name)
    served, target = st.get("servedVersion"), spec.version
    rolled_back = _rolled_back(st, target)
    isvc = observed.get(ch.ISVC)
    if served is None or served == target or rolled_back:
        version = target if served is None else str(served)
        uri = model_uri if served is None else str(st.get("servedModelUri") or model_uri)
        ctx.plan.ensure[ch.ISVC] = build_inference_service(owner, spec, name, version, uri, None)
        ok = inference_service_ready(isvc) and _isvc_version(isvc) == version
        _without_canary(ctx, version, uri, ok, rolled_back, f"InferenceService {name}", f"InferenceService {name}")
        return
    state = _canary_step(
        ctx,
        spec,
        target,
        model_uri,
        ready=inference_service_ready(isvc) and _isvc_version(isvc) == target,
        stalled=inference_service_failed(isvc) if _isvc_version(isvc) == target else None,
        metrics=metrics,
    )
    percent = None if state == "Promoted" else int(st["canary"]["trafficPercent"])
    if state == "RolledBack":
        ctx.plan.ensure[ch.ISVC] = build_inference_service(
            owner, spec, name, str(served), str(st.get("servedModelUri") or ""), None
        )
    else:
        ctx.plan.ensure[ch.ISVC] = build_inference_service(owner, spec, name, target, model_uri, percent)


def _isvc_version(isvc: Mapping[str, Any] | None) -> str | None:
    if not isvc:
        return None
    return (isvc.get("metadata") or {}).get("labels", {}).get(LABEL_VERSION)
