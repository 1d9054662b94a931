"""Latency-based autoscaling with a KEDA ScaledObject and a Prometheus trigger.

KEDA was chosen over an HPA on prometheus-adapter because the query lives next to the workload
(no cluster-wide adapter rule per metric) and the target is a plain number. `metricType: Value`
makes the HPA KEDA generates compare the P99 itself with the target (desired = current x
p99 / target), instead of dividing it by the replica count as the default AverageValue would.
"""

from __future__ import annotations

from typing import Any

from voiceflow_operator.builders.common import Owner, metadata
from voiceflow_operator.constants import LABEL_MODEL, LABEL_ROLE, LATENCY_METRIC
from voiceflow_operator.spec import ModelSpec

DEFAULT_PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"


def p99_query(owner_name: str, namespace: str, role: str) -> str:
    label_sel = (
        f'namespace="{namespace}",{_prom(LABEL_MODEL)}="{owner_name}",{_prom(LABEL_ROLE)}="{role}"'
    )
    return (
        f"histogram_quantile(0.99, sum(rate({LATENCY_METRIC}_bucket{{{label_sel}}}[2m])) by (le))"
    )


def _prom(label: str) -> str:
    # Prometheus' Kubernetes SD turns pod label `voiceflow.io/model` into `voiceflow_io_model`.
    return "".join(c if c.isalnum() else "_" for c in label)


def build_scaled_object(
    owner: Owner,
    spec: ModelSpec,
    name: str,
    deployment: str,
    role: str,
    prometheus_url: str = DEFAULT_PROMETHEUS,
) -> dict[str, Any]:
    a = spec.serving.autoscaling
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata(owner, name, role),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            # A canary takes a small share: one pod is its floor, the autoscaler adds more.
            "minReplicaCount": 1 if role == "canary" else a.min_replicas,
            "maxReplicaCount": a.max_replicas,
            "pollingInterval": 15,
            # Scale in slowly: removing a pod ends its WebSocket sessions.
            "cooldownPeriod": 300,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleDown": {
                            "stabilizationWindowSeconds": 300,
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
                        }
                    }
                }
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "Value",
                    "metadata": {
                        "serverAddress": prometheus_url,
                        "query": p99_query(owner.name, owner.namespace, role),
                        "threshold": f"{a.target_p99_latency_seconds:g}",
                        "ignoreNullValues": "true",
                    },
                }
            ],
        },
    }
