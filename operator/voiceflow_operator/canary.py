"""Canary analysis as pure functions: observations in, a verdict out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voiceflow_operator.constants import LABEL_VERSION
from voiceflow_operator.spec import Canary


@dataclass(frozen=True)
class CanaryMetrics:
    """What Prometheus says about the canary's pods over the analysis window (None: no data)."""

    error_rate: float | None
    p99_latency_seconds: float | None


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "healthy" | "pending" | "unhealthy"
    reason: str
    message: str


def deployment_ready(deployment: Mapping[str, Any] | None, version: str | None = None) -> bool:
    """Available, rolled out to its latest generation, and (optionally) running `version`."""
    if not deployment:
        return False
    labels = (deployment.get("metadata") or {}).get("labels", {})
    if version is not None and labels.get(LABEL_VERSION) != version:
        return False
    if int((deployment.get("status") or {}).get("availableReplicas", 0) or 0) < 1:
        return False
    return _current_and_true(deployment, "Available")


def deployment_stalled(deployment: Mapping[str, Any] | None) -> str | None:
    """The controller's own verdict that a rollout will not finish (ProgressDeadlineExceeded)."""
    progressing = _false_condition(deployment, "Progressing")
    return str(progressing.get("reason") or "ProgressDeadlineExceeded") if progressing else None


def inference_service_ready(isvc: Mapping[str, Any] | None) -> bool:
    """Ready for the spec we last applied: KServe's Ready alone may still describe the previous
    revision right after an update, so the observed generation must have caught up."""
    return _current_and_true(isvc, "Ready")


def inference_service_failed(isvc: Mapping[str, Any] | None) -> str | None:
    """KServe's verdict that the latest revision will not come up (e.g. RevisionFailed)."""
    predictor = _false_condition(isvc, "PredictorReady")
    reason = str(predictor.get("reason", "")) if predictor else ""
    return reason if "Fail" in reason else None


def judge_canary(
    ready: bool,
    stalled_reason: str | None,
    metrics: CanaryMetrics | None,
    elapsed_seconds: float,
    policy: Canary,
) -> Verdict:
    """Decide one analysis step. Metrics are only judged once the canary is ready; a canary
    that is still not ready after the progress deadline is a failure."""
    if stalled_reason:
        return Verdict("unhealthy", "CanaryStalled", f"canary rollout stalled: {stalled_reason}")
    if not ready:
        if elapsed_seconds > policy.progress_deadline_seconds:
            return Verdict(
                "unhealthy",
                "CanaryNotReady",
                f"canary not ready after {policy.progress_deadline_seconds}s",
            )
        return Verdict("pending", "CanaryStarting", "waiting for the canary pods to become ready")
    if metrics is not None:
        if metrics.error_rate is not None and metrics.error_rate > policy.max_error_rate:
            return Verdict(
                "unhealthy",
                "ErrorRateTooHigh",
                f"canary error rate {metrics.error_rate:.4f} > {policy.max_error_rate:.4f}",
            )
        p99 = metrics.p99_latency_seconds
        if p99 is not None and p99 > policy.max_p99_latency_seconds:
            return Verdict(
                "unhealthy",
                "LatencyTooHigh",
                f"canary P99 latency {p99:.3f}s > {policy.max_p99_latency_seconds:.3f}s",
            )
    return Verdict("healthy", "CanaryHealthy", "canary ready and within error/latency budgets")


def _current_and_true(child: Mapping[str, Any] | None, ctype: str) -> bool:
    """The child's controller has observed its latest spec and reports condition `ctype` True for it."""
    if not child:
        return False
    status = child.get("status") or {}
    if status.get("observedGeneration", 0) < (child.get("metadata") or {}).get("generation", 1):
        return False
    condition = _condition(status, ctype)
    return condition is not None and condition.get("status") == "True"


def _false_condition(child: Mapping[str, Any] | None, ctype: str) -> Mapping[str, Any] | None:
    """The child's condition `ctype` when its controller reports it False."""
    condition = _condition((child or {}).get("status") or {}, ctype)
    return condition if condition is not None and condition.get("status") == "False" else None


def _condition(status: Mapping[str, Any], ctype: str) -> Mapping[str, Any] | None:
    for c in status.get("conditions") or ():
        if c.get("type") == ctype:
            return c
    return None
