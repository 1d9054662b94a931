"""`voiceflow operator`: run the Kopf operator. Only argparse at import time (fast `--help`)."""

from __future__ import annotations

import argparse
from typing import Any


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
    p.add_argument("--print-rbac", action="store_true",
                   help="print the (apiGroup, resource, verbs) the operator needs as JSON and exit")
    p.set_defaults(handler=_run)


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
    )
    asyncio.run(run_operator(config))
    return 0
