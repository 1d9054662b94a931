"""What the operator touches in the cluster, so the Helm chart can derive its RBAC from code.

`rbac_rules()` is the single source: the chart's ClusterRole/Role rules are generated from it
(`voiceflow operator --print-rbac > helm/voiceflow/files/operator-rbac.json`). Exactly the verbs the
code uses, nothing more (tests/deploy/test_rbac.py derives them from the source and from Kopf):

- children, through `kube.KubeApi`: get (each child slot every reconcile), create, patch
  (server-side apply), delete; never list, watch or update (the timer re-reads them);
- the resource: get (the reconcile re-reads it), list + watch (Kopf's watch stream), patch (Kopf's
  finalizer and its progress/diff-base annotations); its status: patch (`patch_status`);
- core Events: create (`kopf.event` and Kopf's log-to-Event posting POST `/api/v1/events`);
- cluster-scoped, for Kopf's scanning: list + watch on CRDs (resource discovery) and on namespaces
  (namespace patterns, when the operator watches listed namespaces).
"""

from __future__ import annotations

from voiceflow_operator.constants import GROUP, PLURAL

Rule = tuple[str, str, tuple[str, ...]]

CHILD = ("get", "create", "patch", "delete")
WATCH = ("list", "watch")

# (apiGroup, plural) of every child kind; the operator looks each slot up whatever the serving mode.
CHILD_RESOURCES: tuple[tuple[str, str], ...] = (
    ("argoproj.io", "workflows"),
    ("batch", "jobs"),
    ("apps", "deployments"),
    ("", "services"),
    ("gateway.networking.k8s.io", "httproutes"),
    ("keda.sh", "scaledobjects"),
    ("serving.kserve.io", "inferenceservices"),
)


def rbac_rules() -> list[Rule]:
    """(apiGroup, resource, verbs) triples; "" is the core group."""
    return [
        (GROUP, PLURAL, ("get", "list", "watch", "patch")),
        (GROUP, f"{PLURAL}/status", ("patch",)),
        *((group, plural, CHILD) for group, plural in CHILD_RESOURCES),
        ("", "events", ("create",)),
        ("", "namespaces", WATCH),
        ("apiextensions.k8s.io", "customresourcedefinitions", WATCH),
    ]
