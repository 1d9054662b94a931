"""kmock's KubernetesEmulator, closer to a real API server where the operator relies on it.

kmock 0.8 stores objects as plain merged dicts. This subclass adds what Kopf and our operator
depend on: resourceVersion/uid/generation/creationTimestamp stamping, generateName, a separate
/status subresource (status ignored on the main resource and vice versa), generation bumped only
on spec changes, server-side apply approximated for a single field manager (the applied spec
replaces the old one), finalizers, and garbage collection of dependents by ownerReferences.
Admission, strategic merge and conflicts on stale resourceVersions are still out of scope.

RBAC: with `grants` set (the operator's `rbac_rules()`), a request whose (apiGroup, resource,
verb) is not granted is answered 403 Forbidden, as the API server's authorizer would, and recorded
in `denied`. The tests' own controller helpers (patch_object, ...) do not go through HTTP and are
not checked: only what the operator and Kopf request is.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import uuid
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import jsonpointer
from kmock import KubernetesEmulator, ResourceInfo, action, resource
from kmock._internal import k8s, rendering
from vf_k8s_schema import prune, schema_for

# Resources whose status is only writable through /status (as with subresources: {status: {}}).
STATUS_SUBRESOURCE = {"diarizationmodels", "deployments", "jobs", "inferenceservices",
                      "httproutes", "scaledobjects"}

# (group/version/plural, kind) the tests' cluster serves.
RESOURCES: dict[str, str] = {
    "voiceflow.io/v1alpha1/diarizationmodels": "DiarizationModel",
    "argoproj.io/v1alpha1/workflows": "Workflow",
    "batch/v1/jobs": "Job",
    "apps/v1/deployments": "Deployment",
    "v1/services": "Service",
    "v1/events": "Event",
    "v1/namespaces": "Namespace",
    "gateway.networking.k8s.io/v1/httproutes": "HTTPRoute",
    "keda.sh/v1alpha1/scaledobjects": "ScaledObject",
    "serving.kserve.io/v1beta1/inferenceservices": "InferenceService",
}


Grant = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb); "" is the core group


def request_grant(request: rendering.Request) -> Grant | None:
    """What the authorizer checks for a request; None for non-resource URLs (discovery)."""
    res = request.resource
    if res is None or res.plural is None:
        return None
    resource_name = f"{res.plural}/{request.subresource}" if request.subresource else res.plural
    return res.group or "", resource_name, http_verb(str(request.method.value), request)


def http_verb(method: str, request: rendering.Request) -> str:
    """Kubernetes' request verb: GET is get, list or watch; POST create; PUT update; ..."""
    if method == "GET":
        if request.action == action.WATCH:
            return "watch"
        return "get" if request.name else "list"
    if method == "DELETE" and not request.name:
        return "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _body(request: rendering.Request) -> dict[str, Any]:
    # The raw JSON, not kmock's parsed view of it.
    return json.loads(request.text) if request.text else {}


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


@attrs.define(kw_only=True)
class ClusterEmulator(KubernetesEmulator):
    _rv: itertools.count = attrs.field(factory=lambda: itertools.count(1000), init=False)
    grants: frozenset[Grant] | None = None  # None: no authorization (everything allowed)
    denied: list[Grant] = attrs.field(factory=list, init=False)

    def declare_resources(self) -> None:
        for key, kind in RESOURCES.items():
            plural = key.rsplit("/", 1)[1]
            subresources = {"status"} if plural in STATUS_SUBRESOURCE else set()
            self.resources[key] = ResourceInfo(
                kind=kind,
                namespaced=plural != "namespaces",
                subresources=subresources,
                verbs={"get", "list", "watch", "create", "patch", "update", "delete"},
            )

    def _pruned(self, res: Any, data: dict[str, Any]) -> dict[str, Any]:
        # Our CRD's schema is structural: the API server silently drops undeclared fields, so a
        # status field missing from the CRD would be lost on a real cluster. Do the same here.
        if res.plural != "diarizationmodels":
            return data
        return prune(schema_for("voiceflow.io/v1alpha1", "DiarizationModel"), data)

    def _next_rv(self) -> str:
        return str(next(self._rv))

    # -- mutation ---------------------------------------------------------------------------

    def _authorize(self, request: rendering.Request) -> None:
        grant = request_grant(request)
        if self.grants is None or grant is None or grant in self.grants:
            return
        self.denied.append(grant)
        group, resource_name, verb = grant
        raise k8s.KubernetesError(
            status=403, reason="Forbidden",
            message=f'cannot {verb} resource "{resource_name}" in API group "{group}"',
        )

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        self._authorize(request)
        if request.resource is not None:
            async with self._lock:
                if request.action == action.CREATE:
                    await self._create(request)
                elif request.action == action.UPDATE and request.name is not None:
                    await self._patch(
                        request.resource, request.namespace, request.name, _body(request),
                        request.subresource, request.headers.get("Content-Type", ""),
                    )
                elif request.action == action.DELETE and request.name is not None:
                    await self._delete(request.resource, request.namespace, request.name)
        # Rendering (fetch/list/watch/responses) is kmock's, minus its own mutation logic.
        return await super(KubernetesEmulator, self)._handle(request)

    async def _create(self, request: rendering.Request) -> None:
        data = request.data if isinstance(request.data, dict) else _body(request)
        meta = data.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        ns = request.namespace or meta.get("namespace")
        if ns:
            meta["namespace"] = ns
        key = (request.resource, ns, meta["name"])
        if key in self._objects and not self._objects[key].deleted:
            raise k8s.KubernetesObjectConflictError()
        if request.resource.plural in STATUS_SUBRESOURCE:
            data.pop("status", None)
        meta.update(
            uid=str(uuid.uuid4()), resourceVersion=self._next_rv(), generation=1,
            creationTimestamp=_now(),
        )
        data = self._pruned(request.resource, data)
        if key in self._objects:
            self._objects[key].create(data)
        else:
            self._objects[key] = data
        await self._emit(request.resource, "ADDED", self._objects[key].raw)

    async def _patch(
        self, res: Any, namespace: str | None, name: str, data: dict[str, Any],
        subresource: str | None, content_type: str,
    ) -> None:
        key = (res, namespace, name)
        if key not in self._objects or self._objects[key].deleted:
            raise k8s.KubernetesObjectNotFoundError()
        obj = self._objects[key]
        before = copy.deepcopy(obj.raw)
        has_status = res.plural in STATUS_SUBRESOURCE
        if isinstance(data, list):  # application/json-patch+json (Kopf uses it for finalizers)
            try:
                patched = jsonpatch.apply_patch(before, data)
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
                raise k8s.KubernetesError(status=422, reason="Invalid", message=str(exc)) from exc
            if subresource == "status":
                patched = {**before, "status": patched.get("status")}
            elif has_status:
                patched.pop("status", None)
                if "status" in before:
                    patched["status"] = before["status"]
            patched = {k: v for k, v in patched.items() if v is not None}
            obj.create(patched)
            data = {}
        patch = copy.deepcopy(data)
        if subresource == "status":
            patch = {"status": patch.get("status")} if "status" in patch else {}
        elif has_status:
            patch.pop("status", None)
        if "apply-patch" in content_type:
            # Server-side apply by our single field manager: the applied spec replaces ours.
            for field in _spec_part(patch):
                obj.patch({field: None})
        patch.setdefault("metadata", {})
        # Identity fields are the server's; clients cannot rewrite them.
        for field in ("uid", "creationTimestamp", "generation", "resourceVersion"):
            patch["metadata"].pop(field, None)
        obj.patch(patch)
        pruned = self._pruned(res, obj.raw)
        if pruned != obj.raw:
            obj.create(pruned)
        after = obj.raw
        bump = {"resourceVersion": self._next_rv()}
        if _spec_part(after) != _spec_part(before):
            bump["generation"] = int(before["metadata"].get("generation", 1)) + 1
        obj.patch({"metadata": bump})
        meta = obj.raw["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            await self._remove(res, key)
        else:
            await self._emit(res, "MODIFIED", obj.raw)

    async def _delete(self, res: Any, namespace: str | None, name: str) -> None:
        key = (res, namespace, name)
        if key not in self._objects or self._objects[key].deleted:
            raise k8s.KubernetesObjectNotFoundError()
        obj = self._objects[key]
        meta = obj.raw["metadata"]
        if meta.get("deletionTimestamp"):
            return
        if meta.get("finalizers"):
            obj.patch({"metadata": {"deletionTimestamp": _now(), "resourceVersion": self._next_rv()}})
            await self._emit(res, "MODIFIED", obj.raw)
        else:
            await self._remove(res, key)

    async def _remove(self, res: Any, key: Any) -> None:
        """Delete for good, then garbage-collect dependents (background propagation)."""
        obj = self._objects[key]
        raw = copy.deepcopy(obj.raw)
        obj.delete()
        await self._emit(res, "DELETED", raw)
        uid = raw["metadata"].get("uid")
        for (dep_res, dep_ns, dep_name), dep in list(self._objects.items()):
            if dep.deleted or dep_ns != raw["metadata"].get("namespace"):
                continue
            owners = dep.raw.get("metadata", {}).get("ownerReferences") or []
            if any(o.get("uid") == uid for o in owners):
                await self._delete(dep_res, dep_ns, dep_name)

    async def _emit(self, res: Any, etype: str, raw: dict[str, Any]) -> None:
        await self._buses[res].put({"type": etype, "object": copy.deepcopy(raw)})

    # -- helpers for tests playing controllers ----------------------------------------------

    def get(self, res: str, namespace: str, name: str) -> dict[str, Any] | None:
        key = (resource(res), namespace, name)
        if key not in self._objects or self._objects[key].deleted:
            return None
        return copy.deepcopy(self._objects[key].raw)

    def list(self, res: str, namespace: str | None = None) -> list[dict[str, Any]]:
        r = resource(res)
        return [
            copy.deepcopy(o.raw)
            for (rr, ns, _), o in self._objects.items()
            if rr == r and not o.deleted and (namespace is None or ns == namespace)
        ]

    async def patch_object(
        self, res: str, namespace: str, name: str, data: dict[str, Any], status: bool = False
    ) -> None:
        """What a controller does: a merge patch, to /status when `status`."""
        async with self._lock:
            await self._patch(
                resource(res), namespace, name, data, "status" if status else None,
                "application/merge-patch+json",
            )

    async def create_object(self, res: str, namespace: str, data: dict[str, Any]) -> None:
        request = rendering.Request(resource=resource(res), namespace=namespace, data=copy.deepcopy(data))
        async with self._lock:
            await self._create(request)

    async def delete_object(self, res: str, namespace: str, name: str) -> None:
        async with self._lock:
            await self._delete(resource(res), namespace, name)
