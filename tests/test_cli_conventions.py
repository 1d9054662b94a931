"""The `voiceflow` CLI speaks one way: every flag and argument of every command has a help text,
and every error is one line `voiceflow COMMAND: error: MESSAGE` (argparse's own form)."""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voiceflow_cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
CLI_MODULES = [
    *sorted(p for p in (ROOT / "voiceflow" / "cli").glob("*.py") if p.name != "errors.py"),  # errors.py: the style
    ROOT / "inference_pod" / "cli.py",
    ROOT / "pipelines" / "cli.py",
    ROOT / "pipelines" / "evaluation" / "command.py",
    ROOT / "control_api" / "cli.py",
    ROOT / "operator" / "voiceflow_operator" / "cli.py",
]
ERROR_LINE = re.compile(r"^voiceflow [a-z-]+: error: \S")


def actions(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from actions(sub, f"{path} {name}")
        else:
            yield path, action


def test_every_flag_and_argument_has_help() -> None:
    found = list(actions(build_parser(), "voiceflow"))
    commands = {path for path, _ in found}
    assert {"voiceflow diarize", "voiceflow stream", "voiceflow serve", "voiceflow up", "voiceflow api"} <= commands
    missing = [f"{path} {a.option_strings or a.dest}" for path, a in found if not a.help or a.help == argparse.SUPPRESS]
    assert not missing, missing
    subcommands = [
        (path, name)
        for path, a in found
        if isinstance(a, argparse._SubParsersAction)
        for name in a.choices
        if name not in {c.dest for c in a._choices_actions}
    ]
    assert not subcommands, subcommands


def stderr_texts(path: Path) -> Iterator[tuple[int, str]]:
    """The leading literal text of every `print(..., file=sys.stderr)` in a module."""
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"):
            continue
        if not any(k.arg == "file" and ast.unparse(k.value) == "sys.stderr" for k in node.keywords) or not node.args:
            continue
        first = node.args[0]
        parts = first.values if isinstance(first, ast.JoinedStr) else [first]
        lead = parts[0]
        yield node.lineno, lead.value if isinstance(lead, ast.Constant) and isinstance(lead.value, str) else "{...}"


def test_every_command_module_prints_errors_in_one_style() -> None:
    """Statically: what a command prints to stderr names the command (`voiceflow X: ...`), and an
    error says `voiceflow X: error: ...`; an indented line continues the one before it."""
    offenders = []
    for path in CLI_MODULES:
        for line, text in stderr_texts(path):
            if text.startswith("  ") or text == "interrupted":
                continue
            if not text.startswith("voiceflow ") or ("error" in text and not ERROR_LINE.match(text + "x")):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {text!r}")
    assert not offenders, offenders


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    return code, capsys.readouterr().err.strip().splitlines()


def test_failures_of_each_command_are_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = str(tmp_path / "missing.wav")
    garbage = tmp_path / "model.onnx"
    garbage.write_bytes(b"\x00" * 64)
    cases = [
        (["diarize"], "diarize", 2),
        (["diarize", missing], "diarize", 1),
        (["diarize", "--sample", "--model", str(garbage)], "diarize", 2),
        (["diarize", "--sample", "--num-speakers", "0"], "diarize", 2),  # argparse's own
        (["stream", missing], "stream", 1),
        (["stream", str(ROOT / "tests" / "data" / "dev00.wav"), "--url", "ws://127.0.0.1:9/ws/stream"], "stream", 1),
        (["export"], "export", 2),
        (["evaluate", "--model", str(tmp_path / "none.onnx")], "evaluate", 2),
        (["bundle", "verify", str(tmp_path / "nowhere")], "bundle", 2),
    ]
    for argv, command, expected in cases:
        code, err = run(argv, capsys)
        assert code == expected, (argv, code, err)
        errors = [line for line in err if "error" in line]
        assert len(errors) == 1 and errors[0].startswith(f"voiceflow {command}: error: "), (argv, err)
    monkeypatch.setenv("VOICEFLOW_PIPELINE", "bogus")
    code, err = run(["serve"], capsys)
    assert code == 2 and err == [line for line in err if line.startswith("voiceflow serve: error: configuration: ")]


def test_several_files_each_failure_and_the_count_are_error_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "tone.wav"
    sf.write(good, (0.1 * np.sin(np.arange(16000) / 5)).astype(np.float32), 16000)
    code, err = run(["diarize", str(good), str(tmp_path / "a.wav"), "--out-dir", str(tmp_path / "o")], capsys)
    assert code == 1
    failures = [line for line in err if "a.wav" in line or "failed" in line]
    assert len(failures) == 2 and all(ERROR_LINE.match(line) for line in failures), err
