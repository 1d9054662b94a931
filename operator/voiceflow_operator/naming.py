"""Deterministic child names: the same resource and version always map to the same names, so
a restarted operator finds what it created instead of creating duplicates."""

from __future__ import annotations

import hashlib
import re

from voiceflow.bundle import PUBLISHED_MODEL

MAX_NAME = 63  # DNS-1035 label: Services and the pods derived from Deployments need it.


def dns_name(*parts: str, limit: int = MAX_NAME) -> str:
    """Join parts into a DNS-1035 label, truncating with a short hash to stay unique."""
    raw = "-".join(p for p in parts if p)
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = "vf-" + name
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return name[: limit - 9].rstrip("-") + "-" + digest


def workflow_name(model: str, version: str, attempt: int) -> str:
    return dns_name(model, "train", version, str(attempt))


def export_job_name(model: str, version: str) -> str:
    return dns_name(model, "export", version)


def stable_name(model: str) -> str:
    return dns_name(model)


def canary_name(model: str) -> str:
    return dns_name(model, "canary")


def model_store_uri(artifacts: str, version: str) -> str:
    """The folder the export Job publishes a version's bundle into (`current` -> bundles/<digest>/
    holding model.onnx and every sidecar: metadata, background mean, PLDA, manifest, index);
    serving mounts or downloads the folder whole."""
    return f"{artifacts.rstrip('/')}/{version}/serving"


def registered_model_uri(artifacts: str, version: str) -> str:
    """Where the training workflow's register step stores the version's gated bundle (its model
    file, every sidecar beside it; see pipelines/evaluation/register.py)."""
    return f"{artifacts.rstrip('/')}/{version}/{PUBLISHED_MODEL}"
