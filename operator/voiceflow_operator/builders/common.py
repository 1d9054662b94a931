"""Metadata every child carries: our labels and an ownerReference to the DiarizationModel."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voiceflow_operator.constants import (
    API_VERSION,
    KIND,
    LABEL_MANAGED_BY,
    LABEL_MODEL,
    LABEL_ROLE,
    LABEL_VERSION,
    MANAGER,
)


@dataclass(frozen=True)
class Owner:
    """The DiarizationModel a child belongs to."""

    name: str
    namespace: str
    uid: str

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Owner:
        meta = body["metadata"]
        return cls(name=meta["name"], namespace=meta.get("namespace") or "default", uid=meta.get("uid", ""))


def labels(owner: Owner, role: str, version: str | None = None) -> dict[str, str]:
    out = {
        "app.kubernetes.io/name": "voiceflow",
        "app.kubernetes.io/instance": owner.name,
        LABEL_MANAGED_BY: MANAGER,
        LABEL_MODEL: owner.name,
        LABEL_ROLE: role,
    }
    if version:
        out[LABEL_VERSION] = version
    return out


def selector_labels(owner: Owner, role: str) -> dict[str, str]:
    # Selectors must never include the version: a Deployment's selector is immutable and the
    # stable Deployment is re-pointed at new versions on promotion.
    return {LABEL_MODEL: owner.name, LABEL_ROLE: role}


def metadata(owner: Owner, name: str, role: str, version: str | None = None) -> dict[str, Any]:
    """Child metadata; the ownerReference makes the API server garbage-collect it with its owner."""
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner, role, version),
        "ownerReferences": [
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": owner.name,
                "uid": owner.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }


def container_resources(resources: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    return {k: {rk: str(rv) for rk, rv in v.items()} for k, v in resources.items() if v}


# Our images run as a numeric non-root user (docker/*.Dockerfile), so the restricted Pod Security
# profile holds for our containers.
RESTRICTED = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
