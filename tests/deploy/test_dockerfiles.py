"""The images: hadolint-clean, pinned base, multi-stage, non-root, health checks on the real endpoints."""

from __future__ import annotations

import re
import subprocess

import pytest

from .conftest import ROOT, tool

DOCKER = ROOT / "docker"
# image name -> (Dockerfile, install extra, health endpoint or None, default sub-command)
IMAGES = {
    "voiceflow/inference-pod": ("inference-pod.Dockerfile", "serve", ":3000/health", "serve"),
    "voiceflow/operator": ("operator.Dockerfile", "operator", ":8080/healthz", "operator"),
    "voiceflow/control-api": ("control-api.Dockerfile", "api", ":8000/health", "api"),
    "voiceflow/pipelines": ("pipelines.Dockerfile", "train", None, "--help"),
}


def test_every_dockerfile_is_listed() -> None:
    assert sorted(p.name for p in DOCKER.glob("*.Dockerfile")) == sorted(v[0] for v in IMAGES.values())


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_hadolint_clean(image: str) -> None:
    path = DOCKER / IMAGES[image][0]
    proc = subprocess.run(
        [tool("hadolint"), "--no-color", "--failure-threshold", "info", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_image_conventions(image: str) -> None:
    dockerfile, extra, health, command = IMAGES[image]
    text = (DOCKER / dockerfile).read_text()
    # Pinned base: an exact patch version (or a digest), never a floating tag.
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    stages = re.findall(r"^FROM \S+ AS (\w+)$", text, re.M)
    assert stages == ["builder", "runtime"], stages
    runtime = text.split(" AS runtime", 1)[1]
    # Only the builder stage installs anything; the runtime stage copies the finished venv.
    assert "pip install" not in runtime
    assert f'pip install --editable ".[{extra}]"' in text or (
        'pip install --editable ".[${EXTRAS}]"' in text and re.search(rf"^ARG EXTRAS={extra}$", text, re.M)
    )
    user = re.findall(r"^USER (\S+)$", runtime, re.M)
    assert user and not user[-1].startswith(("0", "root")), user
    assert re.search(r"^ARG APP_UID=10001$", text, re.M)
    if health is None:
        assert "HEALTHCHECK NONE" in text
    else:
        (check,) = re.findall(r"^HEALTHCHECK .*\n\s+CMD (.*)$", text, re.M)
        assert f"127.0.0.1{health}'" in check
        port = health.split("/")[0].lstrip(":")
        assert re.search(rf"^EXPOSE {port}$", text, re.M)
    assert 'ENTRYPOINT ["voiceflow"]' in text
    assert re.search(rf'^CMD \["{re.escape(command)}"', text, re.M)


def default_extras(text: str) -> list[str]:
    """The extras an image installs when built without build arguments."""
    (extras,) = re.findall(r'pip install --editable "\.\[([\w,${}]+)\]"', text)
    if extras == "${EXTRAS}":
        (extras,) = re.findall(r"^ARG EXTRAS=([\w,]+)$", text, re.M)
    return extras.split(",")


def test_torch_only_in_the_pipelines_image() -> None:
    for image, (dockerfile, extra, _, _) in IMAGES.items():
        text = (DOCKER / dockerfile).read_text()
        if image == "voiceflow/pipelines":
            assert extra == "train"
        else:
            assert "train" not in default_extras(text), image
            if image != "voiceflow/control-api":  # its EXTRAS build argument may add train (compose)
                code = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
                assert "torch" not in code.lower(), image


def test_dockerignore_keeps_context_small() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert next(line for line in lines if line and not line.startswith("#")) == "**"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for dockerfile, *_ in IMAGES.values():
        text = (DOCKER / dockerfile).read_text()
        for src in re.findall(r"^COPY (?!--from)(?:--\S+ )*(.+) \S+$", text, re.M):
            for part in src.split():
                assert part.rstrip("/") in allowed, f"{dockerfile} copies {part}, excluded by .dockerignore"
    assert ".venv" not in allowed and ".git" not in allowed


def test_images_install_extras_that_exist_and_only_pipelines_gets_torch() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for image, (_, extra, _, _) in IMAGES.items():
        assert extra in extras, f"{image} installs [{extra}], which pyproject does not define"
        requirements = [*project["dependencies"], *extras[extra]]
        has_torch = any(re.match(r"torch\b", r) for r in requirements)
        assert has_torch == (image == "voiceflow/pipelines"), image


def test_operator_image_carries_what_the_operator_imports_and_not_the_torch_package() -> None:
    """The operator renders training workflows with the hera builders (voiceflow_workflows); the
    torch package `pipelines` belongs to the image that runs the steps."""
    import tomllib

    import grimp

    first_party = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"]
    graph = grimp.build_graph(*first_party, cache_dir=None)
    imported = {m.split(".")[0] for m in graph.find_upstream_modules("voiceflow_operator", as_package=True)}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (DOCKER / "operator.Dockerfile").read_text(), re.M))
    assert "voiceflow_workflows" in imported
    assert "operator" in copied  # the folder voiceflow_operator lives in
    assert imported <= copied, f"the operator imports {sorted(imported - copied)}, which its image lacks"
    assert "pipelines" not in copied


@pytest.mark.parametrize(
    ("dockerfile", "settings_module"),
    [("inference-pod.Dockerfile", "inference_pod.settings"), ("control-api.Dockerfile", "control_api.settings")],
)
def test_image_environment_is_what_the_app_reads(dockerfile: str, settings_module: str) -> None:
    settings = pytest.importorskip(settings_module).Settings
    fields = {f"VOICEFLOW_{name.upper()}" for name in settings.model_fields}
    env = set(re.findall(r"\b(VOICEFLOW_[A-Z_]+)=", (DOCKER / dockerfile).read_text()))
    assert env and env <= fields, sorted(env - fields)
