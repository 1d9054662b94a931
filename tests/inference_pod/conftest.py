"""Fixtures of the pod tests (helpers live in pod_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pod_support import RunningPod, running_pod


@pytest.fixture(scope="module")
def pod() -> Iterator[RunningPod]:
    """A pod with default limits except a fast idle timeout and generous pacing for file streaming."""
    with running_pod(idle_timeout_seconds=3.0, max_realtime_factor=50.0, realtime_burst_seconds=60.0) as p:
        yield p
