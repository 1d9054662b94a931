"""On a real cluster (kind, k3d, ...): the API server itself admits our examples and refuses the
invalid ones, CEL included. Opt-in: `pytest -m cluster tests/operator`; skipped when no cluster
is reachable through the current kubeconfig. Installs the CRD (cluster-scoped) if missing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "diarizationmodels.voiceflow.io.yaml"
EXAMPLES = ROOT / "crds" / "examples"


@pytest.fixture(scope="module")
def api():  # type: ignore[no-untyped-def]
    kubernetes = pytest.importorskip("kubernetes")
    try:
        kubernetes.config.load_kube_config()
    except Exception:
        try:
            kubernetes.config.load_incluster_config()
        except Exception:
            pytest.skip("no Kubernetes cluster configured")
    client = kubernetes.client.ApiClient()
    try:
        kubernetes.client.VersionApi(client).get_code(_request_timeout=3)
    except Exception as exc:
        pytest.skip(f"no Kubernetes cluster reachable: {exc}")
    ext = kubernetes.client.ApiextensionsV1Api(client)
    crd = yaml.safe_load(CRD.read_text())
    try:
        ext.read_custom_resource_definition(crd["metadata"]["name"])
    except kubernetes.client.ApiException:
        ext.create_custom_resource_definition(crd)
    return kubernetes.client.CustomObjectsApi(client)


def _create(api, obj: dict):  # type: ignore[no-untyped-def]
    return api.create_namespaced_custom_object(
        "voiceflow.io", "v1alpha1", "default", "diarizationmodels", obj, dry_run="All"
    )


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_cluster_admits_examples(api, path: Path) -> None:  # type: ignore[no-untyped-def]
    obj = yaml.safe_load(path.read_text())
    obj["metadata"]["namespace"] = "default"
    created = _create(api, obj)
    assert created["spec"]["serving"]["canary"]["trafficPercent"] >= 0  # defaulted by the server


@pytest.mark.parametrize("path", sorted((EXAMPLES / "invalid").glob("*.yaml")), ids=lambda p: p.name)
def test_cluster_refuses_invalid_examples(api, path: Path) -> None:  # type: ignore[no-untyped-def]
    import kubernetes

    obj = yaml.safe_load(path.read_text())
    with pytest.raises(kubernetes.client.ApiException) as info:
        _create(api, obj)
    assert info.value.status == 422


@pytest.fixture(scope="module")
def third_party_crds(api):  # type: ignore[no-untyped-def]
    """The vendored Argo/KServe/Gateway/KEDA CRDs, so children can be created on a bare cluster
    (no controllers act on them: the test only checks what the operator creates)."""
    import kubernetes

    ext = kubernetes.client.ApiextensionsV1Api()
    for path in sorted((ROOT / "crds" / "vendor").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        try:
            ext.read_custom_resource_definition(crd["metadata"]["name"])
        except kubernetes.client.ApiException:
            ext.create_custom_resource_definition(crd)
    return True


async def test_cluster_operator_creates_serving_children(api, third_party_crds) -> None:  # type: ignore[no-untyped-def]
    """The real operator against the real API server: SSA, /status, finalizer, Events."""
    import asyncio
    import time
    import uuid

    import kubernetes
    from voiceflow_operator.handlers import OperatorConfig, run_operator
    from voiceflow_operator.kube import ConnectionSettings

    core = kubernetes.client.CoreV1Api()
    apps = kubernetes.client.AppsV1Api()
    ns = f"vf-op-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    stop = asyncio.Event()
    config = OperatorConfig(connection=ConnectionSettings.discover(), namespaces=[ns], interval_s=1.0)
    task = asyncio.create_task(run_operator(config, stop))
    try:
        obj = yaml.safe_load((EXAMPLES / "serve-existing-kserve.yaml").read_text())
        obj["metadata"]["namespace"] = ns
        obj["spec"]["serving"]["mode"] = "streaming"
        api.create_namespaced_custom_object("voiceflow.io", "v1alpha1", ns, "diarizationmodels", obj)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            await asyncio.sleep(1)
            deployments = apps.list_namespaced_deployment(ns).items
            dm = api.get_namespaced_custom_object("voiceflow.io", "v1alpha1", ns, "diarizationmodels",
                                                  obj["metadata"]["name"])
            if deployments and (dm.get("status") or {}).get("phase") == "Deploying":
                break
        else:
            raise AssertionError("the operator did not create the serving Deployment")
        assert "voiceflow.io/finalizer" in dm["metadata"]["finalizers"]
        api.delete_namespaced_custom_object("voiceflow.io", "v1alpha1", ns, "diarizationmodels",
                                            obj["metadata"]["name"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            await asyncio.sleep(1)
            left = api.list_namespaced_custom_object("voiceflow.io", "v1alpha1", ns, "diarizationmodels")
            if not left["items"]:
                break
        else:
            raise AssertionError("the finalizer was not released")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        core.delete_namespace(ns)
