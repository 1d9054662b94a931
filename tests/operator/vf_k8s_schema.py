"""What the API server does with a custom resource, offline: structural defaulting, OpenAPI v3
schema validation (jsonschema, Draft 4 semantics as in Kubernetes' OpenAPI 3.0 dialect) and
x-kubernetes-validations CEL rules (cel-python), including transition rules with oldSelf."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / "diarizationmodels.voiceflow.io.yaml"
VENDOR = ROOT / "crds" / "vendor"
VENDORED = {
    ("argoproj.io/v1alpha1", "Workflow"): VENDOR / "argoproj.io_workflows.yaml",
    ("serving.kserve.io/v1beta1", "InferenceService"): VENDOR / "serving.kserve.io_inferenceservices.yaml",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): VENDOR / "gateway.networking.k8s.io_httproutes.yaml",
    ("keda.sh/v1alpha1", "ScaledObject"): VENDOR / "keda.sh_scaledobjects.yaml",
}
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def load_crd(path: Path) -> dict[str, Any]:
    with open(path) as f:
        return yaml.load(f, Loader=Loader)


def served_schema(crd: dict[str, Any], version: str) -> dict[str, Any]:
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return v["schema"]["openAPIV3Schema"]
    raise KeyError(version)


def schema_for(api_version: str, kind: str) -> dict[str, Any]:
    if kind == "DiarizationModel":
        return served_schema(load_crd(CRD_PATH), api_version.split("/")[1])
    return served_schema(load_crd(VENDORED[(api_version, kind)]), api_version.split("/")[1])


def apply_defaults(schema: dict[str, Any], obj: Any) -> Any:
    """Structural defaulting: unset properties with a default get it, recursively."""
    obj = copy.deepcopy(obj)
    _default(schema, obj)
    return obj


def _default(schema: dict[str, Any], obj: Any) -> None:
    if isinstance(obj, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name not in obj and "default" in sub:
                obj[name] = copy.deepcopy(sub["default"])
            if name in obj:
                _default(sub, obj[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for value in obj.values():
                _default(extra, value)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for item in obj:
            _default(schema["items"], item)


def schema_errors(schema: dict[str, Any], obj: Any) -> list[str]:
    """OpenAPI v3.0 keywords (boolean exclusiveMinimum, nullable) match JSON Schema Draft 4."""
    validator = jsonschema.Draft4Validator(schema)
    return [
        f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]


def cel_errors(schema: dict[str, Any], obj: Any, old: Any = None) -> list[str]:
    """Evaluate every x-kubernetes-validations rule where the object has a value; transition
    rules (those using oldSelf) only run on updates, when the old value exists too."""
    errors: list[str] = []
    _cel(schema, obj, old, errors)
    return errors


@functools.cache
def _program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule))


CEL_RESERVED = {
    "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function",
    "if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while",
}


def _escape(name: str) -> str:
    # Kubernetes' property-name escaping for CEL (KEP-2876).
    if name in CEL_RESERVED:
        return f"__{name}__"
    return (
        name.replace("__", "__underscores__").replace(".", "__dot__").replace("-", "__dash__")
        .replace("/", "__slash__")
    )


def escape_keys(schema: dict[str, Any], obj: Any) -> Any:
    """Object fields declared as properties are seen by CEL under their escaped names; map keys
    (additionalProperties) are data and stay as they are."""
    if isinstance(obj, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        out = {}
        for k, v in obj.items():
            if k in props:
                out[_escape(k)] = escape_keys(props[k], v)
            else:
                out[k] = escape_keys(extra, v) if isinstance(extra, dict) else v
        return out
    if isinstance(obj, list) and isinstance(schema.get("items"), dict):
        return [escape_keys(schema["items"], i) for i in obj]
    return obj


def _cel(schema: dict[str, Any], obj: Any, old: Any, errors: list[str]) -> None:
    for v in schema.get("x-kubernetes-validations") or ():
        rule = v["rule"]
        if "oldSelf" in rule and old is None:
            continue
        activation = {"self": celpy.json_to_cel(escape_keys(schema, obj))}
        if old is not None:
            activation["oldSelf"] = celpy.json_to_cel(escape_keys(schema, old))
        if not bool(_program(rule).evaluate(activation)):
            errors.append(v.get("message") or f"failed rule: {rule}")
    if isinstance(obj, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name in obj:
                _cel(sub, obj[name], old.get(name) if isinstance(old, dict) else None, errors)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, value in obj.items():
                _cel(extra, value, old.get(key) if isinstance(old, dict) else None, errors)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for item in obj:
            _cel(schema["items"], item, None, errors)


def admit(obj: dict[str, Any], old: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Default, then validate the way the API server admits a DiarizationModel."""
    schema = schema_for(obj["apiVersion"], obj["kind"])
    defaulted = apply_defaults(schema, obj)
    errors = schema_errors(schema, defaulted)
    if not errors:
        old_defaulted = apply_defaults(schema, old) if old is not None else None
        errors = cel_errors(schema, defaulted, old_defaulted)
    return defaulted, errors


def validate_custom(manifest: dict[str, Any]) -> list[str]:
    """Validate a third-party (or our) custom object against its CRD schema."""
    schema = schema_for(manifest["apiVersion"], manifest["kind"])
    defaulted = apply_defaults(schema, manifest)  # the API server defaults before validating
    # Like the API server: CEL rules only run on objects that passed the schema.
    return schema_errors(schema, defaulted) or cel_errors(schema, defaulted)


def structural_problems(schema: dict[str, Any], path: str = "") -> list[str]:
    """The checks behind 'structural schema': every node typed (or int-or-string /
    preserve-unknown-fields), no additionalProperties beside properties."""
    problems: list[str] = []
    if "type" not in schema and not schema.get("x-kubernetes-int-or-string") and not schema.get(
        "x-kubernetes-preserve-unknown-fields"
    ):
        problems.append(f"{path or '<root>'}: no type")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{path}: both properties and additionalProperties")
    for name, sub in (schema.get("properties") or {}).items():
        problems += structural_problems(sub, f"{path}.{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        problems += structural_problems(schema["additionalProperties"], f"{path}.*")
    if isinstance(schema.get("items"), dict):
        problems += structural_problems(schema["items"], f"{path}[]")
    return problems


def prune(schema: dict[str, Any], obj: Any) -> Any:
    """What the API server does to fields a structural schema does not declare: drops them.
    (metadata is the server's own business and is never pruned.)"""
    if isinstance(obj, dict):
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return obj
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is not None:
            return {
                k: (v if k == "metadata" else prune(props[k], v)) for k, v in obj.items() if k in props
            }
        if isinstance(extra, dict):
            return {k: prune(extra, v) for k, v in obj.items()}
        return obj
    if isinstance(obj, list) and isinstance(schema.get("items"), dict):
        return [prune(schema["items"], i) for i in obj]
    return obj
