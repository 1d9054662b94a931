"""RBAC: the operator's ClusterRole/Roles grant exactly what the operator's code touches.

Both sides come from code:
- granted: the chart's rendered ClusterRole/Role rules, from files/operator-rbac.json, which must equal
  `voiceflow_operator.rbac.rbac_rules()` (what `voiceflow operator --print-rbac` prints);
- touched: every manifest kind the operator package builds (found by reading its source), every child
  slot `children.child_refs()` looks up, the HTTP methods its API client uses on them, the CRD
  itself, and the framework resources Kopf watches or posts to (read from the installed Kopf).
A new child kind in the operator without RBAC fails `test_every_touched_kind_and_verb_is_granted`.
At run time, tests/operator's e2e scenarios run the real operator against an emulator that answers
403 to anything outside `rbac_rules()`.

The training Workflows and export Jobs run as their own ServiceAccount (WORKFLOW_SERVICE_ACCOUNT),
which the chart creates, with the Argo executor's Role, wherever the operator creates them.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from .chart import NAMESPACE, by_kind, pod_spec, render
from .conftest import CHART, ROOT

voiceflow_operator = pytest.importorskip("voiceflow_operator")
OPERATOR_SRC = ROOT / "operator" / "voiceflow_operator"
HTTP_TO_VERB = {"GET": "get", "POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}

Grant = tuple[str, str, str]  # (apiGroup, resource, verb)


def rules_to_grants(rules: list[dict]) -> set[Grant]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def declared_grants() -> set[Grant]:
    from voiceflow_operator.rbac import rbac_rules

    return {(g, r, v) for g, r, verbs in rbac_rules() for v in verbs}


def built_kinds() -> set[tuple[str, str]]:
    """(group, Kind) of every manifest literal in the operator package (apiVersion + kind + metadata)."""
    found: set[tuple[str, str]] = set()
    for path in OPERATOR_SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Dict):
                continue
            keys = {k.value: v for k, v in zip(node.keys, node.values, strict=True) if isinstance(k, ast.Constant)}
            if {"apiVersion", "kind", "metadata"} <= keys.keys():
                api, kind = keys["apiVersion"], keys["kind"]
                if isinstance(api, ast.Constant) and isinstance(kind, ast.Constant):
                    found.add((api.value.rpartition("/")[0], kind.value))
    return found


def client_verbs() -> tuple[set[str], set[str]]:
    """RBAC verbs the operator's API client uses on child refs, and on its own resource."""
    tree = ast.parse((OPERATOR_SRC / "kube.py").read_text())
    on_children: set[str] = set()
    on_own: set[str] = set()
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.AsyncFunctionDef | ast.FunctionDef) or fn.name.startswith("_"):
            continue
        methods = {
            n.args[0].value
            for n in ast.walk(fn)
            if isinstance(n, ast.Call)
            and getattr(n.func, "attr", "") == "_request"
            and n.args
            and isinstance(n.args[0], ast.Constant)
        }
        takes_ref = any(isinstance(a.annotation, ast.Name) and a.annotation.id == "Ref" for a in fn.args.args)
        (on_children if takes_ref else on_own).update(HTTP_TO_VERB[m] for m in methods)
    return on_children, on_own


def touched_grants() -> set[Grant]:
    import kopf._cogs.structs.references as kopf_refs
    from voiceflow_operator import children
    from voiceflow_operator.constants import GROUP, KIND, PLURAL

    child_verbs, own_verbs = client_verbs()
    assert {"get", "create", "patch", "delete"} <= child_verbs, child_verbs
    kinds_to_plural = {kind: (api.rpartition("/")[0], plural) for kind, (api, plural) in children.PLURALS.items()}
    kinds_to_plural[KIND] = (GROUP, PLURAL)
    touched: set[tuple[str, str]] = set()
    for group, kind in built_kinds():
        assert kind in kinds_to_plural, f"the operator builds {kind} but children.PLURALS does not map it"
        assert kinds_to_plural[kind][0] == group, (kind, group)
        touched.add(kinds_to_plural[kind])
    body = {"metadata": {"name": "m", "namespace": "ns"}, "spec": {"version": "1"}, "status": {}}
    touched |= {(ref.group, ref.plural) for ref in children.child_refs(body).values()}
    grants = {(g, p, v) for g, p in touched if (g, p) != (GROUP, PLURAL) for v in child_verbs}
    # The operator's own resource: its client reads it (GET) and patches /status; Kopf watches it and
    # patches finalizers and progress annotations.
    grants |= {(GROUP, PLURAL, v) for v in ("list", "watch", "patch")}
    grants |= {(GROUP, PLURAL, v) for v in own_verbs if v == "get"}
    grants |= {(GROUP, f"{PLURAL}/status", v) for v in own_verbs if v == "patch"}
    # Kopf's framework resources (posting.py POSTs core events; namespaces and CRDs are watched).
    for selector, verbs in (
        (kopf_refs.EVENTS, ("create",)),
        (kopf_refs.NAMESPACES, ("list", "watch")),
        (kopf_refs.CRDS, ("list", "watch")),
    ):
        group = selector.group or ""
        grants |= {(group, selector.plural or selector.any_name, v) for v in verbs}
    return grants


def chart_grants(helm_bin: str, combo: str) -> dict[str, set[Grant]]:
    objects = render(helm_bin, combo)
    out: dict[str, set[Grant]] = {}
    for kind in ("ClusterRole", "Role"):
        for role in by_kind(objects, kind):
            if role["metadata"]["name"].endswith("-operator"):
                key = f"{kind}/{role['metadata'].get('namespace', '')}"
                out[key] = rules_to_grants(role["rules"])
    return out


def test_chart_rbac_file_is_the_operators_declaration() -> None:
    rules = json.loads((CHART / "files" / "operator-rbac.json").read_text())
    assert rules_to_grants(rules) == declared_grants(), (
        "regenerate: voiceflow operator --print-rbac > helm/voiceflow/files/operator-rbac.json"
    )


@pytest.mark.parametrize("combo", ["default", "keda", "streaming-only", "kserve"])
def test_rendered_roles_grant_exactly_the_declaration(helm_bin: str, combo: str) -> None:
    roles = chart_grants(helm_bin, combo)
    namespaced = {k: v for k, v in roles.items() if k.startswith("Role/")}
    cluster = roles["ClusterRole/"]
    if namespaced:  # operator.watchNamespaces: one Role per namespace + cluster-scoped lookups
        assert len(namespaced) == 2
        for grants in namespaced.values():
            assert grants | cluster == declared_grants()
        assert {r for _, r, _ in cluster} == {"namespaces", "customresourcedefinitions"}
    else:
        assert cluster == declared_grants()


def test_every_touched_kind_and_verb_is_granted(helm_bin: str) -> None:
    granted = chart_grants(helm_bin, "default")["ClusterRole/"]
    missing = touched_grants() - granted
    assert not missing, f"the operator touches these without RBAC: {sorted(missing)}"


def test_no_kind_is_granted_that_the_code_does_not_touch(helm_bin: str) -> None:
    granted = {(g, r) for g, r, _ in chart_grants(helm_bin, "default")["ClusterRole/"]}
    touched = {(g, r) for g, r, _ in touched_grants()}
    # events.k8s.io Events: Kopf posts core v1 Events only (kopf references EVENTS_K8S "only for exclusion").
    extra = granted - touched - {("events.k8s.io", "events")}
    assert not extra, f"granted but never touched: {sorted(extra)}"


def test_verbs_are_exactly_the_touched_ones(helm_bin: str) -> None:
    granted = chart_grants(helm_bin, "default")["ClusterRole/"]
    assert granted == touched_grants(), sorted(granted ^ touched_grants())


def test_operator_source_is_where_the_test_reads_it() -> None:
    assert Path(voiceflow_operator.__file__).resolve().parent == OPERATOR_SRC.resolve()


# The Argo executor's minimum (emissary executor, Argo >= 3.4): it reports step outputs as
# WorkflowTaskResults. The export Job needs no API access.
ARGO_EXECUTOR_GRANTS = {("argoproj.io", "workflowtaskresults", v) for v in ("create", "patch")}


def operator_namespaces(objects: list[dict]) -> set[str]:
    """Where the operator creates children: the watched namespaces, else (cluster-wide) the release's."""
    (operator,) = [d for d in by_kind(objects, "Deployment") if d["metadata"]["name"].endswith("-operator")]
    args = pod_spec(operator)["containers"][0]["args"]
    return {NAMESPACE, *(a.split("=", 1)[1] for a in args if a.startswith("--namespace="))}


def named(objects: list[dict], kind: str, name: str) -> dict[str, dict]:
    return {o["metadata"]["namespace"]: o for o in by_kind(objects, kind) if o["metadata"]["name"] == name}


@pytest.mark.parametrize("combo", ["default", "keda", "kserve"])
def test_workflow_service_account_exists_where_the_operator_creates_training_pods(
    helm_bin: str, combo: str
) -> None:
    from voiceflow_operator.constants import WORKFLOW_SERVICE_ACCOUNT as SA

    objects = render(helm_bin, combo)
    namespaces = operator_namespaces(objects)
    if combo == "keda":  # operator.watchNamespaces: one ServiceAccount per watched namespace too
        assert len(namespaces) == 2, namespaces
    accounts, roles, bindings = (named(objects, k, SA) for k in ("ServiceAccount", "Role", "RoleBinding"))
    assert accounts.keys() == roles.keys() == bindings.keys() == namespaces
    for ns in namespaces:
        assert rules_to_grants(roles[ns]["rules"]) == ARGO_EXECUTOR_GRANTS, ns
        assert bindings[ns]["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SA}
        assert bindings[ns]["subjects"] == [{"kind": "ServiceAccount", "name": SA, "namespace": ns}]


def test_no_workflow_service_account_without_training(helm_bin: str) -> None:
    from voiceflow_operator.constants import WORKFLOW_SERVICE_ACCOUNT as SA

    objects = render(helm_bin, "streaming-only")
    assert not any(o["metadata"]["name"] == SA for o in objects)
