"""Prometheus metrics of the pod. The names are a contract with the Helm chart, the dashboards and
the autoscaler (which scales on `inference_latency_seconds`): change them only together.

Each app gets its own registry so several servers can live in one test process.

With several worker processes (inference_pod/workers.py sets PROMETHEUS_MULTIPROC_DIR before
they start) every worker writes its values to that directory and any worker's /metrics reports
the whole pod: counters and histograms summed over workers, gauges as each one's
`multiprocess_mode` says (connection counts summed over live workers, model info the max, ready
the min: ready only when every worker is).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

# Exported metric family names (as they appear in the exposition, counters without `_total`
# suffix handling surprises: the `_total` names below are what PromQL sees).
METRIC_NAMES: tuple[str, ...] = (
    "inference_latency_seconds",  # histogram{endpoint="stream"|"infer"}: message received -> result sent
    "inference_requests_total",  # counter{endpoint}: stream results sent / infer requests answered
    "inference_errors_total",  # counter{code}: protocol error codes, overloaded, internal_error, ...
    "websocket_connections_active",  # gauge: accepted WebSocket connections open now
    "inference_streams_active",  # gauge: streams that have sent audio and are open now
    "inference_streams_total",  # counter: streams started
    "inference_audio_seconds_total",  # counter: seconds of audio processed
    "inference_pending_jobs",  # gauge: engine jobs queued or running (the global backpressure bound)
    "inference_embedding_batch_size",  # histogram: windows per cross-session embedding batch
    "inference_segmentation_batch_size",  # histogram: chunks per cross-stream segmentation-network batch
    "inference_model_info",  # gauge{version,sha256} = 1 for the model serving new streams
    "inference_model_reloads_total",  # counter{result="ok"|"failed"}
    "inference_model_ready",  # gauge: 1 once a model is loaded and warmed
    # gauge{pipeline="embedding"|"segmentation",segmentation_version,segmentation_sha256} = 1 for
    # the pipeline serving new streams (the segmentation labels are "" with the embedding pipeline)
    "inference_pipeline_info",
    # counter{stage="vad"|"embedding"|"segmentation"|"clustering"}: CPU seconds the engine spent per
    # stage (batcher and engine threads' own CPU time; "clustering" is everything an engine
    # thread does itself: online clustering, VAD post-processing, buffers, resampling)
    "inference_engine_cpu_seconds_total",
)
ENGINE_STAGES = ("vad", "embedding", "segmentation", "clustering")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def metric_names() -> tuple[str, ...]:
    return METRIC_NAMES


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))
    pipeline: str = "embedding"  # the pipeline this pod is configured to serve (Settings.pipeline)

    def __post_init__(self) -> None:
        r = self.registry
        self.latency = Histogram(
            "inference_latency_seconds",
            "Time from receiving audio to sending its result",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter("inference_requests", "Results sent / requests answered", ["endpoint"], registry=r)
        self.errors = Counter("inference_errors", "Errors by code", ["code"], registry=r)
        self.connections = Gauge(
            "websocket_connections_active", "Open WebSocket connections", registry=r, multiprocess_mode="livesum"
        )
        self.streams_active = Gauge(
            "inference_streams_active", "Streams with audio open now", registry=r, multiprocess_mode="livesum"
        )
        self.streams = Counter("inference_streams", "Streams started", registry=r)
        self.audio_seconds = Counter("inference_audio_seconds", "Seconds of audio processed", registry=r)
        self.pending_jobs = Gauge(
            "inference_pending_jobs", "Engine jobs queued or running", registry=r, multiprocess_mode="livesum"
        )
        self.engine_cpu = Counter("inference_engine_cpu_seconds", "Engine CPU seconds by stage", ["stage"], registry=r)
        for stage in ENGINE_STAGES:
            self.engine_cpu.labels(stage=stage)
        self.batch_size = Histogram(
            "inference_embedding_batch_size",
            "Windows per embedding batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        self.segmentation_batch_size = Histogram(
            "inference_segmentation_batch_size",
            "Chunks per segmentation-network batch (segmentation pipeline)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        self.model_info = Gauge(
            "inference_model_info",
            "Model serving new streams (value 1)",
            ["version", "sha256"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.reloads = Counter("inference_model_reloads", "Model reload attempts", ["result"], registry=r)
        self.pipeline_info = Gauge(
            "inference_pipeline_info",
            "Diarization pipeline serving new streams (value 1)",
            ["pipeline", "segmentation_version", "segmentation_sha256"],
            registry=r,
            multiprocess_mode="livemax",
        )
        # Known from the settings before any model loads; the segmentation labels follow the model.
        self.set_pipeline(self.pipeline)
        self.model_ready = Gauge(
            "inference_model_ready", "1 once a model is loaded and warmed", registry=r, multiprocess_mode="livemin"
        )
        for endpoint in ("stream", "infer"):
            self.requests.labels(endpoint=endpoint)
            self.latency.labels(endpoint=endpoint)
        for result in ("ok", "failed"):
            self.reloads.labels(result=result)

    def set_model(self, version: str, sha256: str) -> None:
        # Exactly one series is 1: drop the previous model's labels so dashboards see the switch.
        _clear(self.model_info)
        self.model_info.labels(version=version, sha256=sha256).set(1)
        self.model_ready.set(1)

    def set_pipeline(self, pipeline: str, segmentation_version: str = "", segmentation_sha256: str = "") -> None:
        _clear(self.pipeline_info)
        self.pipeline_info.labels(
            pipeline=pipeline, segmentation_version=segmentation_version, segmentation_sha256=segmentation_sha256
        ).set(1)

    def exposition(self) -> tuple[bytes, str]:
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not directory:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=directory)
        return generate_latest(merged), CONTENT_TYPE_LATEST


def _clear(gauge: Gauge) -> None:
    """Drop every labelled series. In multiprocess mode a series lives on in the worker's file
    whatever clear() does (prometheus_client does not implement it there), so it is set to 0:
    the merged view shows the old labels at 0 and the new ones at 1."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        for child in list(gauge._metrics.values()):
            cast(Gauge, child).set(0)
        return
    gauge.clear()
