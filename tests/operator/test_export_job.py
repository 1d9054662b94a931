"""The export Job publishes the bundle the workflow gated and registered; it re-exports nothing.

The Job's argv is run for real against a folder laid out like the mounted model store: the pods,
which resolve the serving folder's `current` bundle, then load byte for byte what register stored."""

from __future__ import annotations

import json
import posixpath
from pathlib import Path

import pytest
from vf_scenarios import example_body
from voiceflow_operator.builders import build_deployment, build_export_job
from voiceflow_operator.builders.common import Owner
from voiceflow_operator.builders.export_job import export_args
from voiceflow_operator.builders.storage import MODELS_MOUNT
from voiceflow_operator.naming import model_store_uri, registered_model_uri
from voiceflow_operator.spec import ModelSpec, parse_spec

from voiceflow.bundle import PUBLISHED_MODEL, file_sha256, model_file_in, part_path, verify_bundle, write_index


def trained_spec(quantize: str = "int8") -> tuple[Owner, ModelSpec]:
    body = example_body("train-streaming.yaml")
    body["spec"]["export"] = {"quantize": quantize}
    return Owner.from_body(body), parse_spec(body["spec"])


def test_the_job_publishes_the_registered_bundle_into_the_serving_folder() -> None:
    _, spec = trained_spec()
    assert spec.training is not None and spec.training.artifacts == "pvc://voiceflow-models/meetings"
    assert registered_model_uri(spec.training.artifacts, "1.2.0") == "pvc://voiceflow-models/meetings/1.2.0/model.onnx"
    assert export_args(spec) == [
        "bundle",
        "publish",
        f"{MODELS_MOUNT}/meetings/1.2.0/{PUBLISHED_MODEL}",
        f"{MODELS_MOUNT}/meetings/1.2.0/serving",
    ]


def test_quantization_is_the_workflows_not_the_jobs() -> None:
    # The workflow's export step applies spec.export.quantize before the gate scores the model;
    # publishing copies that artifact, so the Job's command is the same either way.
    commands = []
    for quantize in ("none", "int8"):
        owner, spec = trained_spec(quantize)
        (container,) = build_export_job(owner, spec)["spec"]["template"]["spec"]["containers"]
        commands.append(container["args"])
    assert commands[0] == commands[1] and "--quantize" not in commands[0]


def test_the_job_argv_is_a_voiceflow_command() -> None:
    main = pytest.importorskip("voiceflow_cli.main")
    _, spec = trained_spec()
    args = main.build_parser().parse_args(export_args(spec))
    assert (args.bundle_action, args.model, args.directory) == ("publish", *export_args(spec)[2:])


def test_the_job_keeps_its_name_labels_mounts_and_limits() -> None:
    owner, spec = trained_spec()
    job = build_export_job(owner, spec)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert job["metadata"]["name"] == "meetings-export-1-2-0"
    assert job["spec"]["backoffLimit"] == 2 and container["command"] == ["voiceflow"]
    assert container["securityContext"]["runAsNonRoot"] is True
    (mount,) = container["volumeMounts"]
    assert mount == {"name": "models", "mountPath": MODELS_MOUNT, "readOnly": False}  # it writes serving/
    (volume,) = job["spec"]["template"]["spec"]["volumes"]
    assert volume["persistentVolumeClaim"] == {"claimName": "voiceflow-models", "readOnly": False}


def test_pods_serve_exactly_the_registered_bundle(tmp_path: Path) -> None:
    """Register's layout, then the Job's argv run on it, then the pod's resolution of its folder."""
    main = pytest.importorskip("voiceflow_cli.main")
    owner, spec = trained_spec()
    assert spec.training is not None
    claim = tmp_path / "claim"  # the PVC's root, mounted at MODELS_MOUNT in the Job and the pods

    def on_claim(container_path: str) -> Path:
        return claim / posixpath.relpath(container_path, MODELS_MOUNT)

    registered = on_claim(export_args(spec)[2])
    registered.parent.mkdir(parents=True)
    registered.write_bytes(b"the gated graph")
    part_path(registered, "metadata").write_text(json.dumps({"version": "1.2.0", "quantization": "int8"}))
    part_path(registered, "background").write_bytes(b"background mean")
    part_path(registered, "plda").write_bytes(b"the PLDA the gate clustered with")
    part_path(registered, "manifest").write_text(json.dumps({"gate": {"passed": True}}))
    gated = write_index(registered)

    command, action, *paths = export_args(spec)
    job_argv = [command, action, *(str(on_claim(p)) for p in paths)]
    assert main.main(job_argv) == 0
    assert main.main(job_argv) == 0  # a retried Job publishes the same bundle again

    serving_uri = model_store_uri(spec.training.artifacts, spec.version)
    deployment = build_deployment(owner, spec, owner.name, "stable", spec.version, serving_uri)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    served_folder = on_claim(args[args.index("--model") + 1])
    served = verify_bundle(model_file_in(served_folder))
    assert served.digest == gated.digest and served.roles == gated.roles
    for role in gated.roles:
        assert file_sha256(served.parts[role].path) == gated.parts[role].sha256, role


def test_an_incomplete_registered_bundle_is_not_published(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main = pytest.importorskip("voiceflow_cli.main")
    store = tmp_path / "1.2.0"
    registered = store / PUBLISHED_MODEL
    store.mkdir()
    registered.write_bytes(b"graph")
    part_path(registered, "plda").write_bytes(b"plda")
    write_index(registered)
    part_path(registered, "plda").unlink()
    assert main.main(["bundle", "publish", str(registered), str(store / "serving")]) == 2  # the Job fails
    assert "missing" in capsys.readouterr().err
    assert not (store / "serving" / "current").exists()
