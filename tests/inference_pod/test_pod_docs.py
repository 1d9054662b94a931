"""The pod's /docs and /redoc work without internet: every asset comes from the pod itself."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
from pod_support import RunningPod

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "control_api"))
from test_api_docs import check_offline_docs  # one check for both servers


def test_docs_are_served_without_a_cdn(pod: RunningPod) -> None:
    with httpx.Client(base_url=pod.http, timeout=10) as client:
        check_offline_docs(client.get)
