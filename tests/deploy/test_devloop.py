"""The kind + Tilt dev loop: kind-config.yaml against kind's v1alpha4 config fields, and the Tiltfile
executed by a real Starlark interpreter (starlark-pyo3) with Tilt's builtins recorded by a test
double; its helm() renders the chart with the real helm binary."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import starlark as sl
import yaml

from .chart import helm
from .conftest import ROOT

KIND_SCHEMA = Path(__file__).parent / "schemas" / "kind-v1alpha4.schema.json"
IMAGES = {
    "voiceflow/inference-pod": "docker/inference-pod.Dockerfile",
    "voiceflow/control-api": "docker/control-api.Dockerfile",
    "voiceflow/operator": "docker/operator.Dockerfile",
}


@pytest.fixture(scope="module")
def kind_config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "kind-config.yaml").read_text())


def test_kind_config_uses_only_kind_fields(kind_config: dict[str, Any]) -> None:
    schema = json.loads(KIND_SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(kind_config)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c["nodes"][0]["extraPortMappings"][0].update(hostport=1),  # wrong case: kind is strict
        lambda c: c["nodes"][0].update(role="master"),
        lambda c: c.update(apiVersion="kind.x-k8s.io/v1alpha3"),
        lambda c: c["networking"].update(kubeProxyMode="userspace"),
    ],
)
def test_kind_schema_rejects_mistakes(kind_config: dict[str, Any], mutate: Any) -> None:
    bad = json.loads(json.dumps(kind_config))
    mutate(bad)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(json.loads(KIND_SCHEMA.read_text())).validate(bad)


def test_kind_maps_the_dev_node_ports(helm_bin: str, kind_config: dict[str, Any]) -> None:
    from .chart import by_kind, render

    mapped = {m["containerPort"]: m["hostPort"] for n in kind_config["nodes"] for m in n.get("extraPortMappings", [])}
    node_ports = {
        s["metadata"]["name"]: p["nodePort"]
        for s in by_kind(render(helm_bin, "dev"), "Service")
        for p in s["spec"]["ports"]
        if "nodePort" in p
    }
    assert node_ports == {"vf-voiceflow-inference": 30300, "vf-voiceflow-control-api": 30800}
    assert set(node_ports.values()) == set(mapped)


class TiltDouble:
    """Records what the Tiltfile asks Tilt to do; helm() renders with the real helm binary."""

    def __init__(self, helm_bin: str) -> None:
        self.helm_bin = helm_bin
        self.calls: dict[str, list[tuple[tuple, dict]]] = {}
        self.rendered: list[dict[str, Any]] = []

    def record(self, name: str) -> Any:
        def builtin(*args: Any, **kwargs: Any) -> Any:
            self.calls.setdefault(name, []).append((args, kwargs))
            return {"__tilt__": name, "args": list(args), "kwargs": kwargs}

        return builtin

    def helm(self, chart: str, name: str = "chart", namespace: str = "default", values: Any = (), **kw: Any) -> str:
        assert not kw, f"unexpected helm() arguments {kw}"
        self.calls.setdefault("helm", []).append(((chart,), {"name": name, "namespace": namespace, "values": values}))
        args = ["template", name, str(ROOT / chart), "--namespace", namespace, "--include-crds"]
        for v in values:
            args += ["-f", str(ROOT / v)]
        out = helm(self.helm_bin, *args).stdout
        self.rendered += [d for d in yaml.safe_load_all(out) if d]
        return out

    def k8s_yaml(self, yaml_blob: Any) -> None:
        self.calls.setdefault("k8s_yaml", []).append(((yaml_blob,), {}))
        if isinstance(yaml_blob, dict) and yaml_blob.get("__tilt__") == "blob":
            self.rendered += [d for d in yaml.safe_load_all(yaml_blob["args"][0]) if d]


@pytest.fixture(scope="module")
def tilt(helm_bin: str) -> TiltDouble:
    double = TiltDouble(helm_bin)
    module = sl.Module()
    for name in (
        "allow_k8s_contexts",
        "update_settings",
        "docker_build",
        "sync",
        "run",
        "fall_back_on",
        "k8s_resource",
        "watch_file",
        "link",
        "blob",
    ):
        module.add_callable(name, double.record(name))
    module.add_callable("helm", double.helm)
    module.add_callable("k8s_yaml", double.k8s_yaml)
    source = (ROOT / "Tiltfile").read_text()
    ast = sl.parse("Tiltfile", source)
    sl.eval(module, ast, sl.Globals.standard())
    return double


def test_tiltfile_only_targets_the_kind_cluster(tilt: TiltDouble, kind_config: dict[str, Any]) -> None:
    ((args, _),) = tilt.calls["allow_k8s_contexts"]
    assert args == (f"kind-{kind_config['name']}",)


def test_tiltfile_builds_the_agreed_images(tilt: TiltDouble) -> None:
    builds = {args[0]: (args, kwargs) for args, kwargs in tilt.calls["docker_build"]}
    assert set(builds) == set(IMAGES)
    for image, (args, kwargs) in builds.items():
        assert args[1] == "."
        assert kwargs["dockerfile"] == IMAGES[image] and (ROOT / kwargs["dockerfile"]).is_file()
        assert kwargs["build_args"] == {"APP_FILES_OWNER": "10001"}
        assert "APP_FILES_OWNER" in (ROOT / kwargs["dockerfile"]).read_text()
        for path in kwargs["only"]:
            assert (ROOT / path).exists(), path


def test_build_context_holds_what_each_dockerfile_copies(tilt: TiltDouble) -> None:
    for args, kwargs in tilt.calls["docker_build"]:
        text = (ROOT / kwargs["dockerfile"]).read_text()
        copied = {p for src in re.findall(r"^COPY (?!--from)(?:--\S+ )*(.+) \S+$", text, re.M) for p in src.split()}
        assert copied - set(kwargs["only"]) == set(), f"{args[0]}: COPY outside the build context"


def test_live_update_syncs_code_where_the_images_install_it(tilt: TiltDouble) -> None:
    syncs = [args for args, _ in tilt.calls["sync"]]
    assert syncs
    for args, kwargs in tilt.calls["docker_build"]:
        text = (ROOT / kwargs["dockerfile"]).read_text()
        for step in kwargs["live_update"]:
            if step["__tilt__"] != "sync":
                continue
            local, remote = step["args"]
            assert (ROOT / local).is_dir(), local
            assert remote == f"/app/{local}"
            assert re.search(rf"^COPY {local} \./{local}$", text, re.M), f"{args[0]} syncs {local} it does not install"
    ((fallback,), _), *_ = tilt.calls["fall_back_on"]
    assert "pyproject.toml" in fallback
    live = {args[0] for args, kwargs in tilt.calls["docker_build"] if kwargs["live_update"]}
    assert live == {"voiceflow/inference-pod", "voiceflow/control-api"}


def test_tiltfile_installs_the_chart_with_dev_values(tilt: TiltDouble) -> None:
    (((chart,), kwargs),) = tilt.calls["helm"]
    assert chart == "helm/voiceflow"
    assert kwargs["values"] == ["helm/voiceflow/values-dev.yaml"]
    namespaces = [d["metadata"]["name"] for d in tilt.rendered if d["kind"] == "Namespace"]
    assert namespaces == [kwargs["namespace"]]
    built = {args[0] for args, _ in tilt.calls["docker_build"]}
    used = {
        c["image"].rsplit(":", 1)[0]
        for d in tilt.rendered
        if d["kind"] in {"Deployment", "StatefulSet"}
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert built <= used, f"built but not deployed: {built - used}"
    assert {u for u in used if u.startswith("voiceflow/")} <= built


def test_resources_and_port_forwards(tilt: TiltDouble) -> None:
    workloads = {d["metadata"]["name"]: d for d in tilt.rendered if d["kind"] in {"Deployment", "StatefulSet"}}
    forwards = {}
    for (name,), kwargs in tilt.calls["k8s_resource"]:
        assert name in workloads, f"k8s_resource({name!r}) names no workload"
        ports = {
            p["containerPort"]
            for c in workloads[name]["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for fwd in kwargs.get("port_forwards", []):
            local, remote = (int(x) for x in fwd.split(":"))
            assert remote in ports, (name, fwd)
            forwards[name] = local
        for dep in kwargs.get("resource_deps", []):
            assert dep in workloads
    assert forwards["voiceflow-inference"] == 3000
    assert forwards["voiceflow-control-api"] == 8000
    # Dev containers run under the file watcher the live syncs rely on.
    for name in ("voiceflow-inference", "voiceflow-control-api"):
        (container,) = workloads[name]["spec"]["template"]["spec"]["containers"]
        assert container["command"][0] == "watchfiles" and "/app" in container["command"]
