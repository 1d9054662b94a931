"""Fixtures for the Control API tests: real PostgreSQL and Redis, each test isolated.

PostgreSQL: every test gets its own schema (dropped afterwards). Redis: every test gets its own key
prefix (its keys deleted afterwards). A missing service skips those tests locally and fails them when
CI=true, so CI can never go green by silently testing nothing.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `api_support`, also for child processes

from api_support import ADMIN_PASSWORD, soundfile_diarize, soundfile_validate

from control_api.app import build_context, create_app
from control_api.settings import Settings

PG_URL = os.environ.get("VOICEFLOW_TEST_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("VOICEFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def service_missing(what: str, exc: BaseException) -> None:
    message = f"{what} is not reachable: {type(exc).__name__}: {exc}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(message)


def reachable(what: str, url: str, ping: Callable[[str], object]) -> str:
    """`url` once `ping(url)` answers; otherwise `service_missing(what, ...)`."""
    try:
        ping(url)
    except Exception as exc:
        service_missing(what, exc)
    return url


@pytest.fixture(scope="session")
def pg_url() -> str:
    import sqlalchemy

    def select_one(url: str) -> None:
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()

    return reachable("PostgreSQL", PG_URL, select_one)


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    import sqlalchemy

    schema = f"t_{uuid.uuid4().hex[:16]}"
    engine = sqlalchemy.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    yield schema
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    return reachable("Redis", REDIS_URL, lambda url: redis.Redis.from_url(url, socket_connect_timeout=2).ping())


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    import redis

    prefix = f"vftest:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Base settings on each database: an embedded SQLite file, and a private PostgreSQL schema."""
    base = Settings(
        state_dir=tmp_path / "state",
        jwt_secret="test-secret-" + "x" * 32,
        admin_password=ADMIN_PASSWORD,
        embedded_workers=0,
        poll_interval_s=0.05,
        registry_mode="embedded",
        rate_limit=10_000,
    )
    if request.param == "sqlite":
        return base
    schema = request.getfixturevalue("pg_schema")
    return Settings(**{**base.__dict__, "database_url": request.getfixturevalue("pg_url"), "db_schema": schema})


@pytest.fixture
def client_for() -> Iterator[Callable[..., Any]]:
    """Start the app (lifespan included: migrations, admin, workers) for some settings."""
    from fastapi.testclient import TestClient

    opened: list[Any] = []

    def make(settings: Settings, **context: Any) -> Any:
        context.setdefault("diarize", soundfile_diarize)
        context.setdefault("validate_audio", soundfile_validate)
        app = create_app(context=build_context(settings, **context))
        client = TestClient(app)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in reversed(opened):
        client.__exit__(None, None, None)
