"""Check that a `voiceflow ...` argv is a real command of ours with valid arguments."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from collections.abc import Mapping, Sequence

import pytest

from voiceflow_cli.main import build_parser

PARAM = re.compile(r"\{\{workflow\.parameters\.([\w-]+)\}\}")


def registered_commands(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def substitute(args: Sequence[str], parameters: Mapping[str, str]) -> list[str]:
    """What Argo does before the container starts."""
    return [PARAM.sub(lambda m: parameters[m.group(1)], a) for a in args]


def check_argv(args: Sequence[str], where: str) -> None:
    """Parse with the real parser; skip (not fail) while the sub-command has not landed yet."""
    parser = build_parser()
    command = args[0]
    if command not in registered_commands(parser):
        pytest.skip(f"`voiceflow {command}` is not registered yet (needed by {where})")
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            ns = parser.parse_args(list(args))
    except SystemExit as exc:
        raise AssertionError(f"{where}: `voiceflow {' '.join(args)}` refused: {err.getvalue()}") from exc
    assert getattr(ns, "handler", None) is not None, f"{where}: `voiceflow {command}` has no handler"
