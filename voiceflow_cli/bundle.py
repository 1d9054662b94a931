"""`voiceflow bundle verify|seal|publish`: a model and its sidecars as one unit (voiceflow.bundle)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    bundle = subparsers.add_parser(
        "bundle",
        help="check, seal or publish a model bundle (the ONNX and every sidecar, one digest)",
        description=__doc__,
    )
    actions = bundle.add_subparsers(dest="bundle_action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="check every part of a bundle against its index; print its identity")
    verify.add_argument("model", help="the bundle's .onnx file, or an active-model folder")
    seal = actions.add_parser("seal", help="write the index of the parts beside MODEL.onnx (after changing a part)")
    seal.add_argument("model", help="the .onnx file whose sidecars form the bundle")
    publish = actions.add_parser("publish", help="make a bundle the one a folder serves (atomic switch)")
    publish.add_argument("model", help="the bundle's .onnx file")
    publish.add_argument("directory", help="the active-model folder a pod watches")
    bundle.set_defaults(handler=run_bundle)


def run_bundle(args: argparse.Namespace) -> int:
    from voiceflow.bundle import BundleError, ModelBundle, model_file_in, publish_bundle, verify_bundle, write_index

    try:
        found: ModelBundle
        if args.bundle_action == "seal":
            found = write_index(Path(args.model))
        elif args.bundle_action == "publish":
            found = publish_bundle(Path(args.model), Path(args.directory))
        else:
            found = verify_bundle(model_file_in(Path(args.model)))
    except (BundleError, OSError) as exc:
        print(f"voiceflow bundle: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(describe(found), indent=2))
    return 0


def describe(found: Any) -> dict[str, Any]:
    return {
        "model": str(found.model_path),
        "digest": found.digest,
        "indexed": found.indexed,
        "parts": {role: part.sha256 for role, part in sorted(found.parts.items())},
    }
