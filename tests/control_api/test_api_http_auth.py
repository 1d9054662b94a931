"""Authentication, roles, rate limits and the audit trail over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from api_support import login, with_

from control_api import users
from control_api.db import session_scope
from control_api.security import issue_token
from control_api.settings import Settings


def add_user(client: Any, username: str, role: str, password: str = "password-123") -> dict[str, str]:
    with session_scope(client.app.state.ctx.sessions) as session:
        users.create_user(session, username, password, role)
    return login(client, username, password)


def test_health_needs_no_token_and_ready_checks_the_database(
    db_settings: Settings, client_for: Callable[..., Any]
) -> None:
    client = client_for(db_settings)
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"


def test_missing_expired_forged_and_wrong_type_tokens_get_401(
    db_settings: Settings, client_for: Callable[..., Any]
) -> None:
    client = client_for(db_settings)
    secret = db_settings.jwt_secret
    expired = issue_token("admin", "admin", secret=secret, ttl_s=60, now=time.time() - 3600)
    forged = issue_token("admin", "admin", secret="not-the-server-key-" + "z" * 32, ttl_s=600)
    refresh = issue_token("admin", "admin", secret=secret, ttl_s=600, token_type="refresh")
    cases = {
        "missing": {},
        "expired": {"Authorization": f"Bearer {expired}"},
        "forged": {"Authorization": f"Bearer {forged}"},
        "refresh-as-access": {"Authorization": f"Bearer {refresh}"},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
        "basic": {"Authorization": "Basic YWRtaW46YWRtaW4="},
    }
    for name, headers in cases.items():
        response = client.get("/api/models", headers=headers)
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"] == "Bearer"
    assert "expired" in client.get("/api/models", headers=cases["expired"]).json()["detail"]


def test_wrong_password_and_unknown_user_look_the_same(db_settings: Settings, client_for: Callable[..., Any]) -> None:
    client = client_for(db_settings)
    wrong = client.post("/auth/login", json={"username": "admin", "password": "nope-nope"})
    unknown = client.post("/auth/login", json={"username": "ghost", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_roles_gate_each_action(db_settings: Settings, client_for: Callable[..., Any]) -> None:
    client = client_for(db_settings)
    viewer = add_user(client, "vera", "viewer")
    operator = add_user(client, "otto", "operator")
    assert client.get("/api/models", headers=viewer).status_code == 200
    denied = client.post("/api/models/train", json={"name": "m"}, headers=viewer)
    assert denied.status_code == 403 and "operator" in denied.json()["detail"]
    assert client.post("/api/models/train", json={"name": "m"}, headers=operator).status_code == 202
    assert client.get("/api/audit", headers=operator).status_code == 403
    assert client.get("/api/audit", headers=login(client)).status_code == 200


def test_refresh_gives_a_new_access_token(db_settings: Settings, client_for: Callable[..., Any]) -> None:
    client = client_for(db_settings)
    tokens = client.post("/auth/login", json={"username": "admin", "password": "admin-password-1"}).json()
    refreshed = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    headers = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert client.get("/api/models", headers=headers).status_code == 200
    assert client.post("/auth/refresh", json={"refresh_token": tokens["access_token"]}).status_code == 401


def test_rate_limit_hits_and_resets_with_redis(
    db_settings: Settings, client_for: Callable[..., Any], redis_url: str, redis_prefix: str
) -> None:
    settings = with_(db_settings, redis_url=redis_url, redis_prefix=redis_prefix, rate_limit=5, rate_limit_window_s=2)
    client = client_for(settings)
    headers = login(client)
    # Start at the beginning of a window so all five fit in it.
    time.sleep(2 - time.time() % 2)
    answers = [client.get("/api/models", headers=headers) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert answers[0].headers["x-ratelimit-limit"] == "5"
    assert answers[4].headers["x-ratelimit-remaining"] == "0"
    assert 1 <= int(answers[5].headers["retry-after"]) <= 3
    assert client.get("/ready").json()["redis"] == "ok"
    time.sleep(int(answers[5].headers["retry-after"]))
    assert client.get("/api/models", headers=headers).status_code == 200


def test_rate_limit_in_process_without_redis(db_settings: Settings, client_for: Callable[..., Any]) -> None:
    client = client_for(with_(db_settings, rate_limit=3, rate_limit_window_s=3600))
    headers = login(client)
    codes = [client.get("/api/models", headers=headers).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_every_mutating_call_is_audited_with_its_outcome(db_settings: Settings, client_for: Callable[..., Any]) -> None:
    client = client_for(db_settings)
    admin = login(client)
    viewer = add_user(client, "vera", "viewer")
    client.post("/api/models/train", json={"name": "m"}, headers=admin)
    client.post("/api/models/train", json={"name": "m"}, headers=viewer)
    client.post("/api/models/train", json={"name": "BAD NAME"}, headers=admin)
    client.post("/auth/login", json={"username": "vera", "password": "wrong-password"})
    client.get("/api/models", headers=admin)  # reads are not audited
    entries = client.get("/api/audit", headers=admin).json()
    summary = [(e["username"], e["action"], e["status_code"], e["outcome"]) for e in reversed(entries)]
    assert summary[-4:] == [
        ("admin", "POST /api/models/train", 202, "success"),
        ("vera", "POST /api/models/train", 403, "denied"),
        ("admin", "POST /api/models/train", 422, "rejected"),
        ("vera", "POST /auth/login", 401, "denied"),
    ]
    assert entries[3]["target"].startswith("model=")


def test_redis_down_fails_open_and_not_ready(db_settings: Settings, client_for: Callable[..., Any]) -> None:
    # Nothing listens on port 1: the limiter cannot count, requests still go through, /ready says why.
    client = client_for(with_(db_settings, redis_url="redis://127.0.0.1:1/0", rate_limit=1))
    headers = login(client)
    assert [client.get("/api/models", headers=headers).status_code for _ in range(3)] == [200, 200, 200]
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["database"] == "ok" and ready.json()["redis"].startswith("unreachable")
