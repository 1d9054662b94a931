"""Render a workflow to YAML without a server, for `argo submit` or review:

    python -m voiceflow_workflows training --name meetings-1-2-0 --version 1.2.0 \\
        --dataset pvc://voiceflow-data/corpus --image ghcr.io/voiceflow/voiceflow-train:0.1.0 | argo submit -
    python -m voiceflow_workflows batch --name nightly --input /data/in --output /data/rttm --image IMG
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import yaml

from voiceflow_workflows.batch import BatchWorkflowParams, build_batch_workflow
from voiceflow_workflows.training import TrainingWorkflowParams, build_training_workflow


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m voiceflow_workflows")
    sub = parser.add_subparsers(dest="kind", required=True)
    t = sub.add_parser("training", help="prepare -> train -> export -> evaluate -> register")
    t.add_argument("--name", required=True)
    t.add_argument("--namespace")
    t.add_argument("--version", required=True)
    t.add_argument("--dataset", required=True, help="pvc://, s3://, gs://, http(s)://, file://")
    t.add_argument("--image", required=True)
    t.add_argument("--config", default="full", help="a preset (tiny, full) or a config file path")
    t.add_argument("--artifacts", default="pvc://voiceflow-models", help="the model store PVC")
    t.add_argument("--quantize", choices=["none", "int8"], default="none")
    t.add_argument("--der-margin", type=float, default=0.0)
    t.add_argument("--seed", type=int, default=0)
    b = sub.add_parser("batch", help="voiceflow batch over a folder or manifest")
    b.add_argument("--name", required=True)
    b.add_argument("--namespace")
    b.add_argument("--input", required=True)
    b.add_argument("--output", required=True)
    b.add_argument("--image", required=True)
    b.add_argument("--model")
    b.add_argument("--workers", type=int, default=4)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if a.kind == "training":
        manifest = build_training_workflow(
            TrainingWorkflowParams(
                name=a.name, namespace=a.namespace, version=a.version, dataset=a.dataset, image=a.image,
                config=a.config, artifacts=a.artifacts, quantize=a.quantize, der_margin=a.der_margin,
                seed=a.seed,
            )
        )
    else:
        manifest = build_batch_workflow(
            BatchWorkflowParams(
                name=a.name, namespace=a.namespace, input=a.input, output=a.output, image=a.image,
                model=a.model, workers=a.workers,
            )
        )
    yaml.safe_dump(manifest, sys.stdout, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
