"""What the operator touches in the cluster, so the Helm chart can derive its RBAC from code.

`rbac_rules()` is the single source: the chart's ClusterRole/Role rules should be generated from
it (`python -c 'import voiceflow_operator, json; print(json.dumps(voiceflow_operator.rbac_rules()))'`).
"""

from __future__ import annotations

from voiceflow_operator.constants import GROUP, PLURAL

READ = ("get", "list", "watch")
CHILD = ("get", "list", "watch", "create", "patch", "update", "delete")


def rbac_rules() -> list[tuple[str, str, tuple[str, ...]]]:
    """(apiGroup, resource, verbs) triples; "" is the core group."""
    return [
        # Our resource: watch it, keep Kopf's finalizer/annotations, write status.
        (GROUP, PLURAL, ("get", "list", "watch", "patch", "update")),
        (GROUP, f"{PLURAL}/status", ("get", "patch", "update")),
        # Children (all adopted by ownerReferences).
        ("argoproj.io", "workflows", CHILD),
        ("batch", "jobs", CHILD),
        ("apps", "deployments", CHILD),
        ("", "services", CHILD),
        ("gateway.networking.k8s.io", "httproutes", CHILD),
        ("keda.sh", "scaledobjects", CHILD),
        ("serving.kserve.io", "inferenceservices", CHILD),
        # Kopf posts Events and, cluster-wide, discovers namespaces and CRDs.
        ("", "events", ("create", "patch")),
        ("events.k8s.io", "events", ("create", "patch")),
        ("", "namespaces", READ),
        ("apiextensions.k8s.io", "customresourcedefinitions", READ),
    ]
