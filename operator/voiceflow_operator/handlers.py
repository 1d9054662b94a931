"""Kopf handlers: thin shells that fetch, call `reconcile.decide`, and apply the Plan.

Every handler (create, spec update, resume, the periodic timer) runs the same level-triggered
reconcile under a per-resource lock, re-reading the resource first so a stale event body never
overwrites newer status. The timer is what notices children changing (a Workflow finishing, a
Deployment becoming available, a child deleted by hand) without watching every child kind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import kopf

from voiceflow_operator import children as ch
from voiceflow_operator.builders.autoscaling import DEFAULT_PROMETHEUS
from voiceflow_operator.canary import CanaryMetrics
from voiceflow_operator.constants import API_VERSION, FINALIZER, GROUP, PLURAL, PROGRESS_ANNOTATION_PREFIX, VERSION
from voiceflow_operator.drift import needs_apply, with_hash
from voiceflow_operator.kube import ConnectionSettings, KubeApi
from voiceflow_operator.policy import Policy
from voiceflow_operator.prometheus import PrometheusClient
from voiceflow_operator.reconcile import BACKOFF_BASE_SECONDS, Plan, decide
from voiceflow_operator.spec import ImageDefaults

# Children that are created once and never edited (a new attempt gets a new name).
CREATE_ONLY = {ch.WORKFLOW, ch.EXPORT}


@dataclass
class OperatorConfig:
    connection: ConnectionSettings
    namespaces: list[str] = field(default_factory=list)  # empty: all namespaces
    interval_s: float = 10.0
    canary_prometheus_url: str | None = None  # None: canaries judged on readiness only
    scaler_prometheus_url: str = DEFAULT_PROMETHEUS
    images: ImageDefaults = field(default_factory=ImageDefaults)  # where a spec names no image
    policy: Policy = field(default_factory=Policy)  # what a spec may ask for (images, datasets, resources)
    backoff_base_s: float = BACKOFF_BASE_SECONDS
    standalone: bool = True  # one replica; no peering objects needed
    scanning_disabled: bool = False
    liveness_endpoint: str | None = None  # e.g. http://0.0.0.0:8080/healthz for a livenessProbe
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))


def configure_settings(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    """Kopf settings, each set on purpose."""
    # Our own domain for the finalizer and Kopf's bookkeeping annotations.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PROGRESS_ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PROGRESS_ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    # Only warnings and errors from handler logs become Events; our own Events are explicit.
    settings.posting.level = logging.WARNING
    # Bounded watches: reconnect every few minutes so a silently dead connection cannot stall us.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    # Unexpected errors are retried with a growing delay instead of hot-looping.
    settings.execution.max_workers = 4
    settings.queueing.error_delays = (1, 5, 15, 60, 300)
    # On deletion Kopf waits for a running timer tick before releasing the finalizer. A tick is a
    # few API calls, so wait briefly for it instead of polling again only after 60 s (default).
    settings.background.instant_exit_timeout = 0.5
    settings.background.cancellation_polling = 2
    settings.peering.standalone = config.standalone
    settings.scanning.disabled = config.scanning_disabled


def status_delta(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The merge patch from `old` to `new` (None deletes; deleting what is absent is no change)."""
    return {k: v for k, v in new.items() if old.get(k) != v and not (v is None and k not in old)}


class Reconciler:
    """Owns the API clients and the per-resource locks (mutual exclusion only, no state)."""

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.api = KubeApi(config.connection)
        self.prometheus = (
            PrometheusClient(config.canary_prometheus_url) if config.canary_prometheus_url else None
        )
        self._locks: dict[str, asyncio.Lock] = {}

    async def reconcile(
        self, namespace: str, name: str, uid: str, logger: logging.Logger | Any
    ) -> Plan | None:
        lock = self._locks.setdefault(uid, asyncio.Lock())
        async with lock:
            body = await self.api.get_object(API_VERSION, PLURAL, namespace, name)
            if body is None or body.get("metadata", {}).get("deletionTimestamp"):
                return None
            refs = ch.child_refs(body)
            observed = {slot: await self.api.get(ref, namespace) for slot, ref in refs.items()}
            metrics = await self._canary_metrics(body, namespace, name, logger)
            plan = decide(
                body,
                observed,
                self.config.now(),
                metrics=metrics,
                prometheus_url=self.config.scaler_prometheus_url,
                backoff_base=self.config.backoff_base_s,
                images=self.config.images,
                policy=self.config.policy,
            )
            await self._apply(plan, refs, observed, namespace)
            for event in plan.events:
                kopf.event(
                    kopf.Body(cast(kopf.RawBody, body)),
                    type=event.type,
                    reason=event.reason,
                    message=event.message,
                )
            delta = status_delta(body.get("status") or {}, plan.status)
            if delta:  # no write when nothing changed: steady state causes no watch-event churn
                await self.api.patch_status(API_VERSION, PLURAL, namespace, name, delta)
            return plan

    def forget(self, uid: str) -> None:
        """Drop a deleted resource's lock (a reconcile still holding it keeps its reference)."""
        self._locks.pop(uid, None)

    async def _apply(
        self, plan: Plan, refs: dict[str, ch.Ref], observed: dict[str, Any], namespace: str
    ) -> None:
        for slot, manifest in plan.ensure.items():
            live = observed.get(slot)
            if not needs_apply(manifest, live) or (slot in CREATE_ONLY and live is not None):
                continue
            ref = ch.ref_of(manifest)
            if live is None:
                await self.api.create(ref, namespace, with_hash(manifest))
            else:
                await self.api.apply(ref, namespace, with_hash(manifest))
        for slot in plan.delete:
            await self.api.delete(refs[slot], namespace)

    async def _canary_metrics(
        self, body: dict[str, Any], namespace: str, name: str, logger: logging.Logger | Any
    ) -> CanaryMetrics | None:
        canary = (body.get("status") or {}).get("canary") or {}
        if self.prometheus is None or canary.get("state") != "Progressing":
            return None
        try:
            return await self.prometheus.canary_metrics(namespace, name)
        except Exception as exc:  # Prometheus down: judge on readiness, say so in the log
            logger.warning(f"canary metrics unavailable: {exc}")
            return None


def build_registry(config: OperatorConfig) -> tuple[kopf.OperatorRegistry, Reconciler]:
    """A fresh registry with all handlers bound to `config` (tests build one per operator run)."""
    registry = kopf.OperatorRegistry()
    reconciler = Reconciler(config)
    resource = (GROUP, VERSION, PLURAL)

    @kopf.on.startup(registry=registry)
    def _startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_settings(settings, config)

    @kopf.on.cleanup(registry=registry)
    async def _cleanup(**_: Any) -> None:
        await reconciler.api.close()

    @kopf.on.login(registry=registry)
    def _login(**_: Any) -> kopf.ConnectionInfo:
        # ConnectionSettings' fields are ConnectionInfo's, by name
        return kopf.ConnectionInfo(**dataclasses.asdict(config.connection))

    async def _run(body: kopf.Body, logger: Any, permanent: bool) -> None:
        plan = await reconciler.reconcile(
            body.metadata.namespace or "default", body.metadata.name or "", body.metadata.uid or "", logger
        )
        if plan is not None and plan.permanent_error and permanent:
            # Kopf stops retrying this change and records the reason; a spec fix is a new change.
            raise kopf.PermanentError(plan.permanent_error)

    @kopf.on.create(*resource, registry=registry, id="reconcile-create")
    @kopf.on.resume(*resource, registry=registry, id="reconcile-resume")
    @kopf.on.update(*resource, registry=registry, id="reconcile-update", field="spec")
    async def _changed(body: kopf.Body, logger: Any, **_: Any) -> None:
        await _run(body, logger, permanent=True)

    # A failed tick (API hiccup) is retried on the next interval, not after Kopf's default 60 s.
    @kopf.timer(*resource, registry=registry, id="reconcile-timer", interval=config.interval_s,
                initial_delay=config.interval_s, backoff=config.interval_s)
    async def _tick(body: kopf.Body, logger: Any, **_: Any) -> None:
        await _run(body, logger, permanent=False)

    @kopf.on.delete(*resource, registry=registry, id="release")
    def _deleted(body: kopf.Body, logger: Any, **_: Any) -> None:
        # Children carry controller ownerReferences: the garbage collector removes them once the
        # finalizer is released. The finalizer exists so the deletion is observed and recorded.
        logger.info(f"{body.metadata.name} deleted; children are garbage-collected by ownerReferences")
        reconciler.forget(body.metadata.uid or "")

    return registry, reconciler


async def run_operator(config: OperatorConfig, stop_flag: asyncio.Event | None = None) -> None:
    """Run the real Kopf operator until `stop_flag` is set (or forever)."""
    registry, _ = build_registry(config)
    await kopf.operator(
        registry=registry,
        clusterwide=not config.namespaces,
        namespaces=config.namespaces,
        standalone=config.standalone,
        stop_flag=stop_flag,
        liveness_endpoint=config.liveness_endpoint,
    )
