"""A small async Kubernetes API client (aiohttp, already a Kopf dependency).

Kopf has no public client for other objects, and the `kubernetes` package is synchronous; this
is the handful of calls the operator needs: get, create, server-side apply, delete, status patch.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from voiceflow_operator.children import Ref

FIELD_MANAGER = "voiceflow-operator"


class ApiError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


@dataclass(frozen=True)
class ConnectionSettings:
    """Where the API server is and how to authenticate; shared with Kopf's login handler."""

    server: str
    token: str | None = None
    ca_path: str | None = None
    certificate_path: str | None = None
    private_key_path: str | None = None
    insecure: bool = False

    @classmethod
    def discover(cls) -> ConnectionSettings:
        """In-cluster service account first, then the usual kubeconfig (via `kubernetes`)."""
        from kubernetes import client, config  # imported late: only needed on a real cluster

        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
        c = client.Configuration.get_default_copy()
        auth = (c.api_key or {}).get("authorization") or (c.api_key or {}).get("BearerToken")
        token = auth.split(" ", 1)[1] if auth and auth.lower().startswith("bearer ") else auth
        return cls(
            server=c.host,
            token=token,
            ca_path=c.ssl_ca_cert,
            certificate_path=c.cert_file,
            private_key_path=c.key_file,
            insecure=not c.verify_ssl,
        )


def path_for(api_version: str, plural: str, namespace: str, name: str | None = None) -> str:
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = f"{base}/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path


class KubeApi:
    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    def _ssl(self) -> ssl.SSLContext | bool:
        if self.settings.insecure:
            return False
        ctx = ssl.create_default_context(cafile=self.settings.ca_path)
        if self.settings.certificate_path and self.settings.private_key_path:
            ctx.load_cert_chain(self.settings.certificate_path, self.settings.private_key_path)
        return ctx

    async def _request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | None:
        if self._session is None:
            headers = {"Authorization": f"Bearer {self.settings.token}"} if self.settings.token else {}
            self._session = aiohttp.ClientSession(
                base_url=self.settings.server.rstrip("/") + "/",
                headers=headers,
                connector=aiohttp.TCPConnector(ssl=self._ssl()),
                timeout=aiohttp.ClientTimeout(total=30),
            )
        data = json.dumps(body) if body is not None else None
        async with self._session.request(
            method, path.lstrip("/"), data=data, params=params, headers={"Content-Type": content_type}
        ) as resp:
            if resp.status == 404:
                return None
            text = await resp.text()
            if resp.status >= 400:
                raise ApiError(resp.status, text[:500])
            return json.loads(text) if text else {}

    async def get(self, ref: Ref, namespace: str) -> dict[str, Any] | None:
        return await self._request("GET", path_for(ref.api_version, ref.plural, namespace, ref.name))

    async def create(self, ref: Ref, namespace: str, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
        try:
            return await self._request("POST", path_for(ref.api_version, ref.plural, namespace), manifest)
        except ApiError as exc:
            if exc.status == 409:  # created by an earlier run of ours: adopt it, do not duplicate
                return await self.get(ref, namespace)
            raise

    async def apply(self, ref: Ref, namespace: str, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
        """Server-side apply: fields we stop setting are removed, fields others own are kept."""
        return await self._request(
            "PATCH",
            path_for(ref.api_version, ref.plural, namespace, ref.name),
            manifest,
            content_type="application/apply-patch+yaml",
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
        )

    async def delete(self, ref: Ref, namespace: str) -> None:
        await self._request(
            "DELETE",
            path_for(ref.api_version, ref.plural, namespace, ref.name),
            {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
        )

    async def patch_status(
        self, api_version: str, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        return await self._request(
            "PATCH",
            path_for(api_version, plural, namespace, name) + "/status",
            {"status": status},
            content_type="application/merge-patch+json",
        )

    async def get_object(
        self, api_version: str, plural: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        return await self._request("GET", path_for(api_version, plural, namespace, name))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
