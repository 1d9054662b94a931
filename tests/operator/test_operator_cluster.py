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
