"""Canary metrics from Prometheus (optional: without it, canaries are judged on readiness)."""

from __future__ import annotations

import aiohttp

from voiceflow_operator.canary import CanaryMetrics
from voiceflow_operator.constants import LATENCY_METRIC

# The inference pod exports `inference_latency_seconds` (histogram), `inference_requests_total`
# and `inference_errors_total`; Prometheus' pod discovery turns our pod labels into these names.
SELECTOR = 'namespace="{ns}",voiceflow_io_model="{model}",voiceflow_io_role="canary"'
ERROR_RATE = (
    "sum(rate(inference_errors_total{{{sel}}}[5m]))"
    " / sum(rate(inference_requests_total{{{sel}}}[5m]))"
)
P99 = "histogram_quantile(0.99, sum(rate(" + LATENCY_METRIC + "_bucket{{{sel}}}[5m])) by (le))"


class PrometheusClient:
    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def _scalar(self, session: aiohttp.ClientSession, query: str) -> float | None:
        async with session.get(f"{self.url}/api/v1/query", params={"query": query}) as resp:
            resp.raise_for_status()
            payload = await resp.json()
        result = (payload.get("data") or {}).get("result") or []
        if not result:
            return None  # no traffic yet: nothing to judge, not a failure
        value = float(result[0]["value"][1])
        return None if value != value else value  # NaN (0/0) means no requests

    async def canary_metrics(self, namespace: str, model: str) -> CanaryMetrics:
        sel = SELECTOR.format(ns=namespace, model=model)
        async with aiohttp.ClientSession(timeout=self.timeout) as session:
            return CanaryMetrics(
                error_rate=await self._scalar(session, ERROR_RATE.format(sel=sel)),
                p99_latency_seconds=await self._scalar(session, P99.format(sel=sel)),
            )
