"""Configs and the command line the workflow steps call."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.training.config import config_from_dict, load_config, load_preset, preset_names


def test_presets_load_and_tiny_is_small() -> None:
    assert {"tiny", "full"} <= set(preset_names())
    tiny, full = load_preset("tiny"), load_preset("full")
    assert tiny.data.max_speakers is not None and full.data.max_speakers is None  # full trains on every speaker
    assert full.student.embedding_dim == 256  # the teacher's dimension: cosine distillation needs it


def test_unknown_config_keys_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown config key"):
        config_from_dict({"lr": 0.1, "learning_rate": 0.1})
    with pytest.raises(ValueError, match=r"augment"):
        config_from_dict({"augment": {"p_nois": 0.5}})
    path = tmp_path / "c.json"
    path.write_text('{"seed": 3, "data": {"max_speakers": 5}, "augment": {"snr_db": [1, 2]}}')
    config = load_config(path)
    assert config.seed == 3 and config.data.max_speakers == 5 and config.augment.snr_db == (1.0, 2.0)


def test_commands_are_registered_with_stable_arguments() -> None:
    from voiceflow_cli.main import build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "--preset", "tiny", "--out", "runs/x", "--max-steps", "3"])
    assert args.handler and args.preset == "tiny" and args.max_steps == 3
    args = parser.parse_args(["export", "runs/x/model.pt", "--out", "m.onnx", "--quantize", "int8"])
    assert args.checkpoint == "runs/x/model.pt" and args.quantize == "int8"
    args = parser.parse_args(["batch", "in", "--out-dir", "out", "--workers", "3"])
    assert args.workers == 3
    args = parser.parse_args(
        ["evaluate", "--model", "m.onnx", "--gate", "--margin", "0.01", "--baseline-model", "b.onnx"]
    )
    assert args.model == "m.onnx" and args.gate and args.margin == 0.01 and args.baseline_model == "b.onnx"
    args = parser.parse_args(["evaluate", "--model", "m.onnx", "--data", "dev", "--json-out", "metrics.json"])
    assert args.data == "dev" and args.json_out == "metrics.json"
    argv = ["register", "--model", "m.onnx", "--metrics", "x.json", "--version", "v1", "--store", "s"]
    args = parser.parse_args([*argv, "--der-margin", "0.01"])
    assert args.der_margin == 0.01 and args.version == "v1"


def test_cli_module_imports_only_argparse() -> None:
    import ast

    source = (Path(__file__).resolve().parents[2] / "pipelines" / "cli.py").read_text()
    top = [n for n in ast.parse(source).body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = {a.name for n in top for a in n.names} | {n.module for n in top if isinstance(n, ast.ImportFrom)}
    assert names <= {"argparse", "sys", "__future__", "annotations", "pathlib", "Path", "typing", "Any"}
