"""End to end on a real cluster (kind): install the chart, apply a DiarizationModel serving an
existing model (`spec.model.uri`), wait for Ready, stream a file over WebSocket.

Opt-in: `pytest -m cluster tests/deploy/test_cluster_e2e.py` with a reachable cluster whose current
context is a kind cluster (or VOICEFLOW_E2E_CONTEXT naming the context) and the images loaded
(docs/deploy.md, "End-to-end test"). Skipped when no cluster is reachable.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.stream_client import voiceflow_stream

from .conftest import CHART, ROOT

pytestmark = pytest.mark.cluster

NAMESPACE = os.environ.get("VOICEFLOW_E2E_NAMESPACE", "voiceflow-e2e")
RELEASE = "voiceflow-e2e"
TAG = os.environ.get("VOICEFLOW_E2E_TAG", "dev")
MODEL = "e2e"


def kubectl_bin() -> str | None:
    local = ROOT / ".tools" / "bin" / "kubectl"
    return str(local) if local.exists() else shutil.which("kubectl")


def context_args() -> list[str]:
    ctx = os.environ.get("VOICEFLOW_E2E_CONTEXT")
    return ["--context", ctx] if ctx else []


def kubectl(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    kube = kubectl_bin()
    assert kube
    proc = subprocess.run([kube, *context_args(), *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr[-2000:]}"
    return proc


@pytest.fixture(scope="module")
def cluster() -> None:
    if kubectl_bin() is None:
        pytest.skip("no kubectl (run scripts/fetch-helm.sh, which also fetches kubectl)")
    try:
        proc = kubectl("version", "--request-timeout=5s", timeout=15, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip("no reachable Kubernetes cluster")
    if proc.returncode != 0:
        pytest.skip("no reachable Kubernetes cluster")
    current = kubectl("config", "current-context", check=False).stdout.strip()
    if not os.environ.get("VOICEFLOW_E2E_CONTEXT") and not current.startswith("kind-"):
        pytest.skip(f"current context {current!r} is not a kind cluster; set VOICEFLOW_E2E_CONTEXT to use it")


@pytest.fixture(scope="module")
def release(cluster: None, helm_bin: str) -> Iterator[None]:
    args = [
        helm_bin,
        *(["--kube-context", os.environ["VOICEFLOW_E2E_CONTEXT"]] if "VOICEFLOW_E2E_CONTEXT" in os.environ else []),
        "upgrade",
        "--install",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "-f",
        str(CHART / "values-dev.yaml"),
        "--set",
        f"image.tag={TAG}",
        "--set",
        "controlApi.command=null",
        "--set",
        "inference.command=null",
        "--wait",
        "--timeout",
        "10m",
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=700, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    yield
    kubectl(
        "delete",
        "diarizationmodel",
        MODEL,
        "-n",
        NAMESPACE,
        "--ignore-not-found",
        "--wait=true",
        timeout=300,
        check=False,
    )
    subprocess.run(
        [helm_bin, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait"],
        capture_output=True,
        timeout=300,
        check=False,
    )
    kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false", check=False)


class PortForward:
    def __init__(self, target: str, port: int) -> None:
        kube = kubectl_bin()
        assert kube
        self.proc = subprocess.Popen(
            [kube, *context_args(), "port-forward", "-n", NAMESPACE, target, f"0:{port}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout
        line = self.proc.stdout.readline()
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert m, line
        self.local_port = int(m.group(1))

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def assert_streams(service: str, wav: Path) -> None:
    """`voiceflow stream` of `wav` through a port-forward to the Service gets a session and a final result."""
    fwd = PortForward(f"svc/{service}", 3000)
    try:
        proc = voiceflow_stream(wav, f"ws://127.0.0.1:{fwd.local_port}/ws/stream", "--speed", "0", timeout=300)
    finally:
        fwd.close()
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "ready: session" in proc.stdout and "final" in proc.stdout


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two alternating synthetic 'speakers' (different pitch), 12 s at 16 kHz."""
    sr = 16000
    t = np.arange(sr * 3) / sr
    a = 0.3 * np.sin(2 * np.pi * 140 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    b = 0.3 * np.sin(2 * np.pi * 260 * t) * (1 + 0.5 * np.sin(2 * np.pi * 5 * t))
    path = tmp_path_factory.mktemp("e2e") / "two-speakers.wav"
    sf.write(path, np.concatenate([a, b, a, b]).astype(np.float32), sr)
    return path


def test_default_inference_pod_streams(release: None, wav: Path) -> None:
    # The release name contains the chart name, so the chart names objects "<release>-<component>".
    assert_streams(f"{RELEASE}-inference", wav)


def test_diarization_model_with_model_uri_becomes_ready_and_streams(release: None, wav: Path) -> None:
    from voiceflow_operator import naming

    manifest = f"""
apiVersion: voiceflow.io/v1alpha1
kind: DiarizationModel
metadata:
  name: {MODEL}
  namespace: {NAMESPACE}
spec:
  version: "0.1.0"
  model:
    uri: file:///app/voiceflow/models/ge2e.onnx
  serving:
    mode: streaming
    image: voiceflow/inference-pod:{TAG}
    canary: {{trafficPercent: 0}}
    autoscaling: {{minReplicas: 1, maxReplicas: 1}}
"""
    kube = kubectl_bin()
    assert kube
    proc = subprocess.run(
        [kube, *context_args(), "apply", "-f", "-"],
        input=manifest,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    wait = kubectl(
        "wait",
        f"diarizationmodel/{MODEL}",
        "-n",
        NAMESPACE,
        "--for=condition=Ready",
        "--timeout=900s",
        timeout=930,
        check=False,
    )
    if wait.returncode != 0:
        status = kubectl("get", f"diarizationmodel/{MODEL}", "-n", NAMESPACE, "-o", "yaml", check=False).stdout
        pytest.fail(f"not Ready within 900 s:\n{status}")
    assert_streams(naming.stable_name(MODEL), wav)
