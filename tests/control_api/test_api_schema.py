"""Property-based checks of the whole API against its own OpenAPI schema (schemathesis).

Kept bounded (a handful of examples per operation, SQLite, no workers) so it runs in seconds: no 5xx,
every status code and body documented, every response matching its schema.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from api_support import ADMIN_PASSWORD, soundfile_diarize, soundfile_validate
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from control_api.app import build_context, create_app
from control_api.settings import Settings

# The schema is loaded at collection time, so the app is built at import; building it touches nothing but
# a fresh temporary folder (the database is migrated by the fixture below, through the app's lifespan).
STATE = Path(tempfile.mkdtemp(prefix="voiceflow-schema-"))
atexit.register(shutil.rmtree, STATE, True)  # also when the test is collected but not run
APP = create_app(
    context=build_context(
        Settings(
            state_dir=STATE,
            jwt_secret="schema-secret-" + "s" * 32,
            admin_password=ADMIN_PASSWORD,
            embedded_workers=0,
            registry_mode="embedded",
            rate_limit=1_000_000,
            reference_root=str(STATE),
        ),
        diarize=soundfile_diarize,
        validate_audio=soundfile_validate,
    )
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
TOKENS: dict[str, str] = {}
# What the API promises: never a 5xx, and only documented status codes, content types, headers and bodies.
# (The positive/negative data heuristics are left out on purpose: a well-formed reference to a file that
# does not exist is rightly a 422, and unknown query parameters are ignored, as in most HTTP APIs.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module", autouse=True)
def running_app() -> Iterator[None]:
    with TestClient(APP) as client:  # runs the lifespan: migrations and the admin account
        login = client.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        TOKENS["admin"] = login.json()["access_token"]
        yield


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKENS['admin']}"}, checks=CHECKS)
