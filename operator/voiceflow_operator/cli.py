"""`voiceflow operator`: run the Kopf operator. Only argparse at import time (fast `--help`)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voiceflow_operator.policy import Policy
    from voiceflow_operator.spec import ImageDefaults

# The defaults of the default-image flags can come from the environment (a Deployment's env).
SERVING_IMAGE_ENV = "VOICEFLOW_SERVING_IMAGE"
PIPELINES_IMAGE_ENV = "VOICEFLOW_TRAINING_IMAGE"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "operator",
        help="run the DiarizationModel Kubernetes operator",
        description="Reconcile DiarizationModel resources into workflows, jobs and serving.",
    )
    p.add_argument("--namespace", "-n", action="append", default=[],
                   help="namespace to watch (repeatable; default: all namespaces)")
    p.add_argument("--interval", type=float, default=10.0, help="reconcile period in seconds")
    p.add_argument("--prometheus-url", default=None,
                   help="Prometheus for canary analysis (error rate, P99); without it canaries are "
                        "judged on readiness only")
    p.add_argument("--scaler-prometheus-url", default=None,
                   help="Prometheus address written into KEDA ScaledObjects")
    p.add_argument("--liveness", default=None, metavar="URL",
                   help="serve Kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz")
    p.add_argument("--serving-image", default=None, metavar="IMAGE",
                   help="image of the serving pods where spec.serving.image is not set "
                        f"(default: ${SERVING_IMAGE_ENV}, else voiceflow/inference-pod)")
    p.add_argument("--pipelines-image", default=None, metavar="IMAGE",
                   help="image of the training workflow and the export Job where spec.training.image "
                        f"is not set (default: ${PIPELINES_IMAGE_ENV}, else voiceflow/pipelines)")
    # What a DiarizationModel may ask for (voiceflow_operator.policy; the chart's operator.policy values).
    p.add_argument("--allowed-image", action="append", default=[], metavar="PREFIX",
                   help="image prefix a spec may name, e.g. registry.example/voiceflow/ (repeatable; "
                        "default: only the operator's default images)")
    p.add_argument("--dataset-root", action="append", default=None, metavar="PATH",
                   help="folder a file:// dataset must lie under (repeatable; default /data)")
    p.add_argument("--max-cpu", default=None, metavar="QUANTITY", help="largest CPU request/limit (default 16)")
    p.add_argument("--max-memory", default=None, metavar="QUANTITY",
                   help="largest memory request/limit (default 64Gi)")
    p.add_argument("--max-gpus", type=int, default=None, help="largest GPU request/limit (default 1)")
    p.add_argument("--max-replicas", type=int, default=None,
                   help="largest spec.serving.autoscaling.maxReplicas (default 20)")
    p.add_argument("--print-rbac", action="store_true",
                   help="print the (apiGroup, resource, verbs) the operator needs as JSON and exit")
    p.set_defaults(handler=_run)


def image_defaults(
    serving: str | None, pipelines: str | None, environ: Mapping[str, str] | None = None
) -> ImageDefaults:
    """The operator's default images: the flag, else the environment, else the built-in default."""
    from voiceflow_operator.spec import ImageDefaults

    env = os.environ if environ is None else environ
    builtin = ImageDefaults()
    return ImageDefaults(
        serving=serving or env.get(SERVING_IMAGE_ENV) or builtin.serving,
        pipelines=pipelines or env.get(PIPELINES_IMAGE_ENV) or builtin.pipelines,
    )


def policy_from_args(args: argparse.Namespace) -> Policy:
    """The installation's policy: each flag given, else the built-in default."""
    from voiceflow_operator.policy import Policy

    builtin = Policy()
    return Policy(
        allowed_images=tuple(args.allowed_image),
        dataset_roots=tuple(args.dataset_root) if args.dataset_root is not None else builtin.dataset_roots,
        max_cpu=args.max_cpu or builtin.max_cpu,
        max_memory=args.max_memory or builtin.max_memory,
        max_gpus=builtin.max_gpus if args.max_gpus is None else args.max_gpus,
        max_replicas=builtin.max_replicas if args.max_replicas is None else args.max_replicas,
    )


def _run(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from voiceflow_operator.rbac import rbac_rules

    if args.print_rbac:
        rules = [{"apiGroups": [g], "resources": [r], "verbs": list(v)} for g, r, v in rbac_rules()]
        print(json.dumps(rules, indent=2))
        return 0

    from voiceflow_operator.builders.autoscaling import DEFAULT_PROMETHEUS
    from voiceflow_operator.handlers import OperatorConfig, run_operator
    from voiceflow_operator.kube import ConnectionSettings

    config = OperatorConfig(
        connection=ConnectionSettings.discover(),
        namespaces=list(args.namespace),
        interval_s=args.interval,
        canary_prometheus_url=args.prometheus_url,
        scaler_prometheus_url=args.scaler_prometheus_url or args.prometheus_url or DEFAULT_PROMETHEUS,
        liveness_endpoint=args.liveness,
        images=image_defaults(args.serving_image, args.pipelines_image),
        policy=policy_from_args(args),
    )
    asyncio.run(run_operator(config))
    return 0
