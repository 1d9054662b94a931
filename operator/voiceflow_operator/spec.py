"""A typed, defaulted view of a DiarizationModel's spec.

The API server applies the CRD's defaults and refuses what the schema and CEL rules refuse; this
module repeats the defaults (a resource may come from an older CRD, or from an emulator without
defaulting) and the cross-field checks, raising SpecError with a message fit for a condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from voiceflow.contracts import HYPERPARAMETERS
from voiceflow_operator.constants import DEFAULT_SERVING_PIPELINE, SERVING_PIPELINES

Resources = Mapping[str, Mapping[str, str]]


class SpecError(ValueError):
    """The spec can never be reconciled as written (a permanent error, not a retry)."""


# The images the chart builds (docker/*.Dockerfile, docs/deploy.md), at the chart's appVersion.
DEFAULT_SERVING_IMAGE = "voiceflow/inference-pod:0.1.0"
DEFAULT_PIPELINES_IMAGE = "voiceflow/pipelines:0.1.0"


@dataclass(frozen=True)
class ImageDefaults:
    """The images used where a spec names none (`voiceflow operator --serving-image/--pipelines-image`).

    The CRD has no default for `training.image` / `serving.image` on purpose: the API server would
    otherwise fill one in and the operator's (installation-specific) defaults could never apply.
    """

    serving: str = DEFAULT_SERVING_IMAGE
    pipelines: str = DEFAULT_PIPELINES_IMAGE  # training workflow steps and the export Job


@dataclass(frozen=True)
class Training:
    dataset: str
    preset: str = "full"
    config: str | None = None
    hyperparameters: Mapping[str, float] = field(default_factory=dict)
    image: str = DEFAULT_PIPELINES_IMAGE
    artifacts: str = "pvc://voiceflow-models"
    der_margin: float = 0.0
    max_retries: int = 2
    resources: Resources = field(default_factory=dict)


@dataclass(frozen=True)
class Canary:
    traffic_percent: int = 10
    analysis_interval_seconds: int = 60
    healthy_checks_to_promote: int = 5
    max_error_rate: float = 0.01
    max_p99_latency_seconds: float = 0.5
    progress_deadline_seconds: int = 600


@dataclass(frozen=True)
class Autoscaling:
    min_replicas: int = 1
    max_replicas: int = 5
    target_p99_latency_seconds: float = 0.3


@dataclass(frozen=True)
class Gateway:
    name: str = "voiceflow-gateway"
    namespace: str | None = None
    hostname: str | None = None


@dataclass(frozen=True)
class Serving:
    mode: str = "streaming"
    pipeline: str = DEFAULT_SERVING_PIPELINE  # env VOICEFLOW_PIPELINE of the serving pods
    image: str = DEFAULT_SERVING_IMAGE
    gateway: Gateway = field(default_factory=Gateway)
    canary: Canary = field(default_factory=Canary)
    autoscaling: Autoscaling = field(default_factory=Autoscaling)
    resources: Resources = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    version: str
    training: Training | None
    model_uri: str | None
    quantize: str
    serving: Serving


def parse_spec(spec: Mapping[str, Any], images: ImageDefaults | None = None) -> ModelSpec:
    """Validate and default a spec dict; raise SpecError naming the offending field.

    `images` fills `training.image` and `serving.image` where the spec names none.
    """
    images = images or ImageDefaults()
    version = spec.get("version")
    if not isinstance(version, str) or not version:
        raise SpecError("spec.version is required")
    training_raw, model_raw = spec.get("training"), spec.get("model")
    if (training_raw is None) == (model_raw is None):
        raise SpecError("exactly one of spec.training or spec.model must be set")
    training = _training(training_raw, images.pipelines) if training_raw is not None else None
    model_uri = str(model_raw["uri"]) if model_raw is not None and "uri" in model_raw else None
    if model_raw is not None and not model_uri:
        raise SpecError("spec.model.uri is required")
    quantize = str((spec.get("export") or {}).get("quantize", "none"))
    if quantize not in ("none", "int8"):
        raise SpecError(f"spec.export.quantize must be none or int8, not {quantize!r}")
    return ModelSpec(
        version, training, model_uri, quantize, _serving(spec.get("serving") or {}, images.serving)
    )


def _training(raw: Mapping[str, Any], default_image: str) -> Training:
    if not raw.get("dataset"):
        raise SpecError("spec.training.dataset is required")
    d = Training(dataset="-")
    return Training(
        dataset=str(raw["dataset"]),
        preset=str(raw.get("preset", d.preset)),
        config=raw.get("config"),
        hyperparameters=_hyperparameters(raw.get("hyperparameters") or {}),
        image=str(raw.get("image") or default_image),
        artifacts=str(raw.get("artifacts", d.artifacts)).rstrip("/"),
        der_margin=float(raw.get("derMargin", d.der_margin)),
        max_retries=int(raw.get("maxRetries", d.max_retries)),
        resources=raw.get("resources") or {},
    )




def _hyperparameters(raw: Mapping[str, Any]) -> dict[str, float]:
    unknown = sorted(set(raw) - set(HYPERPARAMETERS))
    if unknown:
        raise SpecError(f"spec.training.hyperparameters: unknown {', '.join(unknown)}")
    return {k: float(v) if k == "learningRate" else int(v) for k, v in raw.items()}


def _serving(raw: Mapping[str, Any], default_image: str) -> Serving:
    d = Serving()
    mode = str(raw.get("mode", d.mode))
    if mode not in ("streaming", "kserve"):
        raise SpecError(f"spec.serving.mode must be streaming or kserve, not {mode!r}")
    pipeline = str(raw.get("pipeline", d.pipeline))
    if pipeline not in SERVING_PIPELINES:
        raise SpecError(f"spec.serving.pipeline must be one of {', '.join(SERVING_PIPELINES)}, not {pipeline!r}")
    c, a, g = raw.get("canary") or {}, raw.get("autoscaling") or {}, raw.get("gateway") or {}
    canary = Canary(
        traffic_percent=int(c.get("trafficPercent", d.canary.traffic_percent)),
        analysis_interval_seconds=int(c.get("analysisIntervalSeconds", d.canary.analysis_interval_seconds)),
        healthy_checks_to_promote=int(c.get("healthyChecksToPromote", d.canary.healthy_checks_to_promote)),
        max_error_rate=float(c.get("maxErrorRate", d.canary.max_error_rate)),
        max_p99_latency_seconds=float(c.get("maxP99LatencySeconds", d.canary.max_p99_latency_seconds)),
        progress_deadline_seconds=int(c.get("progressDeadlineSeconds", d.canary.progress_deadline_seconds)),
    )
    if not 0 <= canary.traffic_percent < 100:
        raise SpecError("spec.serving.canary.trafficPercent must be in 0..99")
    autoscaling = Autoscaling(
        min_replicas=int(a.get("minReplicas", d.autoscaling.min_replicas)),
        max_replicas=int(a.get("maxReplicas", d.autoscaling.max_replicas)),
        target_p99_latency_seconds=float(
            a.get("targetP99LatencySeconds", d.autoscaling.target_p99_latency_seconds)
        ),
    )
    if autoscaling.min_replicas > autoscaling.max_replicas:
        raise SpecError("spec.serving.autoscaling.minReplicas must not exceed maxReplicas")
    gateway = Gateway(
        name=str(g.get("name", d.gateway.name)), namespace=g.get("namespace"), hostname=g.get("hostname")
    )
    return Serving(
        mode=mode,
        pipeline=pipeline,
        image=str(raw.get("image") or default_image),
        gateway=gateway,
        canary=canary,
        autoscaling=autoscaling,
        resources=raw.get("resources") or {},
    )
