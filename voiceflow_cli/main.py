"""The `voiceflow` console script.

Each component owns its sub-commands in a small `cli` module exposing `register(subparsers)`; the
module imports only argparse at import time so `voiceflow --help` stays fast and a serving image
without torch can still run `voiceflow serve`. A component whose extra is not installed simply
does not contribute its commands.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Order is the order in `--help`.
COMMAND_MODULES: tuple[str, ...] = (
    "voiceflow_cli.engine_commands",  # diarize, evaluate, simulate
    "voiceflow_cli.bundle",  # bundle: verify / seal / publish a model bundle
    "voiceflow_cli.up",  # up: the embedded platform (pod + control API as child processes)
    "pipelines.cli",  # export, train, register
    "inference_pod.cli",  # serve, stream
    "voiceflow_operator.cli",  # operator
    "control_api.cli",  # api
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voiceflow", description="Real-time speaker diarization platform")
    parser.add_argument("--version", action="version", version="voiceflow 0.1.0")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only the component package itself being absent is tolerated; a broken import is a bug.
            if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                continue
            raise
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
