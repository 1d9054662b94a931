"""The one-host `docker compose up` path: the compose file against the Compose Specification schema,
and its wiring (images, health checks, environment the apps actually read, mounted files)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from .conftest import ROOT

COMPOSE = ROOT / "deploy" / "compose.yaml"
SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_matches_the_compose_specification(compose: dict) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    errors = sorted(validator_cls(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


@pytest.mark.parametrize(
    ("service", "key", "value"),
    [
        ("redis", "restart_policy", "always"),
        ("inference", "healthcheck", {"interval": ["10s"]}),
        ("postgres", "image", 16),
    ],
)
def test_schema_check_catches_mistakes(compose: dict, service: str, key: str, value: object) -> None:
    schema = json.loads(SCHEMA.read_text())
    bad = json.loads(json.dumps(compose))
    bad["services"][service][key] = value
    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(bad))


def test_services_and_images(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"inference", "control-api", "postgres", "redis", "prometheus", "grafana"}
    for name, image in (("inference", "voiceflow/inference-pod"), ("control-api", "voiceflow/control-api")):
        svc = services[name]
        assert svc["image"].split(":")[0] == image
        assert (COMPOSE.parent / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"]
        assert "healthcheck" in svc
    for svc in services.values():
        tag = svc["image"].rsplit(":", 1)[1]
        assert tag and tag != "latest" and not tag.startswith("${"), svc["image"]
    # Published on loopback only (issue 26): a host's other interfaces reach nothing without a proxy.
    for svc in services.values():
        assert all(str(port).startswith("127.0.0.1:") for port in svc.get("ports", [])), svc["ports"]
    assert services["inference"]["ports"] == ["127.0.0.1:3000:3000"]
    assert services["control-api"]["ports"] == ["127.0.0.1:8000:8000"]
    assert services["control-api"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }


def test_environment_is_what_the_apps_read(compose: dict) -> None:
    api_settings = pytest.importorskip("control_api.settings")
    pod_settings = pytest.importorskip("inference_pod.settings")
    for service, settings in (("control-api", api_settings.Settings), ("inference", pod_settings.Settings)):
        fields = {f"VOICEFLOW_{name.upper()}" for name in settings.model_fields}
        env = set(compose["services"][service]["environment"])
        assert env <= fields, f"{service}: {sorted(env - fields)} are not settings of the app"
    url = compose["services"]["control-api"]["environment"]["VOICEFLOW_DATABASE_URL"]
    assert re.fullmatch(r"postgresql\+psycopg://voiceflow:\$\{POSTGRES_PASSWORD:-[^}]+\}@postgres:5432/voiceflow", url)


def test_no_secret_ships_in_the_compose_file(compose: dict) -> None:
    from voiceflow_edge.servers import KNOWN_SECRETS

    api = compose["services"]["control-api"]["environment"]
    assert api["VOICEFLOW_JWT_SECRET"] == "${VOICEFLOW_JWT_SECRET:-}"
    assert api["VOICEFLOW_ADMIN_PASSWORD"] == "${VOICEFLOW_ADMIN_PASSWORD:-}"
    assert api["VOICEFLOW_ADMIN_PASSWORD_FILE"].startswith("/var/lib/voiceflow/")
    pod = compose["services"]["inference"]
    assert pod["environment"]["VOICEFLOW_JWT_KEY_FILE"] == "/var/lib/voiceflow/jwt_secret"
    # A secret you set reaches both; unset, the pod reads the one the API generated.
    assert pod["environment"]["VOICEFLOW_JWT_KEY"] == api["VOICEFLOW_JWT_SECRET"]
    assert "api-state:/var/lib/voiceflow:ro" in pod["volumes"]
    for svc in ("control-api", "inference"):
        for name, value in compose["services"][svc]["environment"].items():
            if not any(word in name for word in ("SECRET", "PASSWORD", "KEY")):
                continue
            defaults = re.findall(r"\$\{[A-Z_]+:-([^}]*)\}", str(value))
            assert str(value) not in KNOWN_SECRETS and not set(defaults) & KNOWN_SECRETS, (svc, value)


def test_mounted_files_exist(compose: dict) -> None:
    for svc in compose["services"].values():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), volume
    grafana = compose["services"]["grafana"]["volumes"]
    assert any(v.startswith("../helm/voiceflow/dashboards:") for v in grafana), "same dashboards as the chart"


def test_prometheus_scrapes_the_inference_service_with_the_dashboards_labels(compose: dict) -> None:
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = prom["scrape_configs"]
    (static,) = job["static_configs"]
    host, port = static["targets"][0].split(":")
    assert host in compose["services"] and port == "3000"
    from .test_monitoring import TARGET_LABELS

    assert set(static["labels"]) | {"job", "instance"} == TARGET_LABELS
    mounted = {v.split(":")[1] for v in compose["services"]["prometheus"]["volumes"] if v.startswith(".")}
    assert set(prom["rule_files"]) <= mounted


def test_grafana_provisioning_matches_the_dashboards() -> None:
    ds = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/voiceflow.yml").read_text())
    types = {d["type"] for d in ds["datasources"]}
    wanted = set()
    for path in (ROOT / "helm/voiceflow/dashboards").glob("*.json"):
        for var in json.loads(path.read_text())["templating"]["list"]:
            if var["type"] == "datasource":
                wanted.add(var["query"])
    assert wanted <= types
    providers = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/voiceflow.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/voiceflow"


def test_the_compose_control_api_installs_what_its_routes_run(compose: dict) -> None:
    """Embedded, the registry's train/export routes run `voiceflow train|export` in the API's own
    container: its image must hold the `train` extra, or every train request is a 503."""
    import tomllib

    training = pytest.importorskip("control_api.training")
    service = compose["services"]["control-api"]
    assert service["environment"]["VOICEFLOW_REGISTRY_MODE"] == "embedded"
    extras = service["build"]["args"]["EXTRAS"].split(",")
    assert {"api", "train"} <= set(extras)
    dockerfile = (COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]).read_text()
    assert 'pip install --editable ".[${EXTRAS}]"' in dockerfile and "ARG TORCH_INDEX_URL=" in dockerfile
    defined = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installed = {re.split(r"[<>=\[ ]", r, maxsplit=1)[0] for extra in extras for r in defined[extra]}
    # The modules whose absence the API reports as a 503 are exactly what this install brings.
    assert set(training.TRAIN_EXTRA_MODULES) <= installed, installed
