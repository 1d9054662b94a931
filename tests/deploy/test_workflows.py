"""The public repository's CI/CD workflow: actionlint (with shellcheck on the run: scripts when it is
installed), SchemaStore's workflow schema, and the jobs the project promises."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from .conftest import ROOT, VENV_BIN, tool

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
SCHEMA = Path(__file__).parent / "schemas" / "github-workflows.json"


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the `on:` key as True.
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def test_there_is_a_workflow() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint(path: Path) -> None:
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(
        [tool("actionlint"), "-no-color", "-oneline", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_mistakes(tmp_path: Path) -> None:
    bad = (ROOT / ".github" / "workflows" / "ci.yml").read_text().replace("file: docker/", "fil: docker/")
    proc = subprocess.run(
        [tool("actionlint"), "-no-color", "-oneline", "-"],
        input=bad,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1 and 'input "fil" is not defined' in proc.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_schemastore_schema(path: Path) -> None:
    jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).validate(load(path))


def test_ci_jobs_cover_the_promises() -> None:
    wf = load(ROOT / ".github" / "workflows" / "ci.yml")
    jobs = wf["jobs"]
    assert set(jobs) == {"lint", "test", "chart", "images", "release"}
    assert wf["permissions"] == {"contents": "read"}
    lint_runs = " ".join(s.get("run", "") for s in jobs["lint"]["steps"])
    for command in ("ruff check", "lint-imports", "mypy"):
        assert command in lint_runs
    assert set(jobs["test"]["services"]) == {"postgres", "redis"}
    test_env = jobs["test"]["env"]
    conftest = ROOT / "tests" / "control_api" / "conftest.py"
    if conftest.exists():  # the variables the control API tests read
        for var in ("VOICEFLOW_TEST_DATABASE_URL", "VOICEFLOW_TEST_REDIS_URL"):
            assert var in conftest.read_text() and var in test_env
    chart_runs = " ".join(s.get("run", "") for s in jobs["chart"]["steps"])
    assert "scripts/fetch-helm.sh" in chart_runs and "lint --strict" in chart_runs and "tests/deploy" in chart_runs
    matrix = jobs["images"]["strategy"]["matrix"]["image"]
    assert sorted(f"{m}.Dockerfile" for m in matrix) == sorted(p.name for p in (ROOT / "docker").glob("*.Dockerfile"))
    release = jobs["release"]
    assert "refs/tags/v" in release["if"] and release["needs"] == ["images"]
    release_runs = " ".join(s.get("run", "") for s in release["steps"])
    assert re.search(r"helm.* package helm/voiceflow", release_runs.replace('"$HELM"', "helm"))
    assert "oci://ghcr.io/" in release_runs
    # Images are pushed only for tags.
    (build,) = [s for s in jobs["images"]["steps"] if s.get("uses", "").startswith("docker/build-push-action")]
    assert build["with"]["push"] == "${{ startsWith(github.ref, 'refs/tags/v') }}"
