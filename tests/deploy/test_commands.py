"""Every command line the deployment files give `voiceflow` parses with the real CLI parser
(voiceflow_cli.main.build_parser): chart containers, Dockerfile CMDs, compose commands, the dev
watchfiles command lines and the workflow."""

from __future__ import annotations

import argparse
import json
import re
import shlex

import pytest
import yaml

from .chart import COMBOS, by_kind, pod_spec, render
from .conftest import ROOT


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    main = pytest.importorskip("voiceflow_cli.main")
    p: argparse.ArgumentParser = main.build_parser()
    subcommands = {a.dest: a for a in p._actions if a.dest == "command"}
    choices = set(subcommands["command"].choices)
    for needed in ("serve", "operator", "api"):
        if needed not in choices:
            pytest.skip(f"`voiceflow {needed}` is not registered here (its component's extra is not installed)")
    return p


def parses(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on unknown flags
        pytest.fail(f"voiceflow {' '.join(argv)}: rejected by the CLI parser ({exc})")
    assert getattr(args, "handler", None) is not None, argv


def container_argv(container: dict) -> list[str]:
    command = container.get("command")
    if command:
        if command[0] == "watchfiles":  # dev: watchfiles ... --target-type command "<cmd>" /app
            target = command[command.index("command") + 1]
            argv = shlex.split(target)
            assert argv[0] == "voiceflow", target
            return argv[1:]
        assert command == ["voiceflow"], command
    return list(container["args"])


@pytest.mark.parametrize("combo", sorted(COMBOS))
def test_chart_commands_parse(helm_bin: str, combo: str, parser: argparse.ArgumentParser) -> None:
    for workload in by_kind(render(helm_bin, combo), "Deployment"):
        for container in pod_spec(workload)["containers"]:
            if container["image"].startswith("voiceflow/"):
                parses(parser, container_argv(container))


def operator_args(objects: list[dict], parser: argparse.ArgumentParser) -> argparse.Namespace:
    (operator,) = [d for d in by_kind(objects, "Deployment") if d["metadata"]["name"].endswith("-operator")]
    return parser.parse_args(container_argv(pod_spec(operator)["containers"][0]))


def test_operator_default_images_are_the_charts_images(helm_bin: str, parser: argparse.ArgumentParser) -> None:
    """The operator's --serving-image / --pipelines-image (parsed by the real CLI) name the chart's images."""
    objects = render(helm_bin, "default")
    (inference,) = [d for d in by_kind(objects, "Deployment") if d["metadata"]["name"].endswith("-inference")]
    args = operator_args(objects, parser)
    assert args.serving_image == pod_spec(inference)["containers"][0]["image"] == "voiceflow/inference-pod:0.1.0"
    assert args.pipelines_image == "voiceflow/pipelines:0.1.0"
    moved = operator_args(render(helm_bin, "default", extra=("--set", "image.registry=ghcr.io/acme")), parser)
    assert (moved.serving_image, moved.pipelines_image) == (
        "ghcr.io/acme/voiceflow/inference-pod:0.1.0",
        "ghcr.io/acme/voiceflow/pipelines:0.1.0",
    )


def test_operator_policy_comes_from_the_chart_values(helm_bin: str, parser: argparse.ArgumentParser) -> None:
    """operator.policy values reach `voiceflow operator` as flags its parser and policy_from_args read."""
    from voiceflow_operator.cli import policy_from_args
    from voiceflow_operator.policy import Policy

    assert policy_from_args(operator_args(render(helm_bin, "default"), parser)) == Policy()
    extra = (
        "--set-json",
        'operator.policy={"allowedImages":["registry.example/voiceflow/"],"datasetRoots":["/mnt/audio"],'
        '"maxCpu":"4","maxMemory":"8Gi","maxGpus":0,"maxReplicas":3}',
    )
    policy = policy_from_args(operator_args(render(helm_bin, "default", extra=extra), parser))
    assert policy == Policy(("registry.example/voiceflow/",), ("/mnt/audio",), "4", "8Gi", 0, 3)


def test_dockerfile_commands_parse(parser: argparse.ArgumentParser) -> None:
    for dockerfile in (ROOT / "docker").glob("*.Dockerfile"):
        text = dockerfile.read_text()
        (cmd,) = re.findall(r"^CMD (\[.*\])$", text, re.M)
        argv = json.loads(cmd)
        if argv == ["--help"]:
            continue
        parses(parser, argv)


def test_compose_commands_parse(parser: argparse.ArgumentParser) -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    for name in ("inference", "control-api"):
        parses(parser, compose["services"][name]["command"])
