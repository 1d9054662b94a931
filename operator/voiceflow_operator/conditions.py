"""Kubernetes-style status conditions, as pure functions over plain lists of dicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Condition = dict[str, Any]


def get_condition(conditions: Sequence[Condition] | None, ctype: str) -> Condition | None:
    for c in conditions or ():
        if c.get("type") == ctype:
            return c
    return None


def is_true(conditions: Sequence[Condition] | None, ctype: str) -> bool:
    c = get_condition(conditions, ctype)
    return c is not None and c.get("status") == "True"


def set_condition(
    conditions: Sequence[Condition] | None,
    ctype: str,
    status: str,
    reason: str,
    message: str,
    generation: int,
    now: str,
) -> list[Condition]:
    """Return a new list with `ctype` set; lastTransitionTime only moves when status changes,
    so `kubectl wait` and alerting see real transitions, not every reconcile."""
    assert status in ("True", "False", "Unknown")
    old = get_condition(conditions, ctype)
    transition = now if old is None or old.get("status") != status else old["lastTransitionTime"]
    new: Condition = {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": transition,
    }
    out = [c for c in (conditions or ()) if c.get("type") != ctype]
    out.append(new)
    return sorted(out, key=lambda c: str(c["type"]))
