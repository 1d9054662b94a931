"""Deciding whether a live child differs from what we want, without fighting server defaults.

Each manifest we write carries a hash of itself in an annotation; a child is re-applied only
when that hash differs (spec changed, or someone edited the child by hand and the hash no longer
matches what we would write). Comparing whole objects instead would flap on server defaults.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from voiceflow.contracts import qualified

HASH_ANNOTATION = qualified("spec-hash")


def spec_hash(manifest: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]


def with_hash(manifest: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(manifest))
    meta = out.setdefault("metadata", {})
    meta.setdefault("annotations", {})[HASH_ANNOTATION] = spec_hash(manifest)
    return out


def needs_apply(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    if live is None:
        return True
    live_hash = ((live.get("metadata") or {}).get("annotations") or {}).get(HASH_ANNOTATION)
    return bool(live_hash != spec_hash(desired))
