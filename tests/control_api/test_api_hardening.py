"""Hostile clients of the Control API (issue 26): bounded decoding, 4xx at the edge, auth before the body."""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import socket
import stat
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from api_support import ADMIN_PASSWORD, factory_for, login, with_
from fastapi.testclient import TestClient
from starlette.exceptions import HTTPException as StarletteHTTPException
from test_api_queue import add_job

from control_api import cli, edge, jobs, queue, train_paths, training, users
from control_api.app import MULTIPART_SLACK_BYTES
from control_api.db import make_engine, session_scope
from control_api.edge import MAX_JSON_BODY_BYTES
from control_api.engine import engine_validate_audio
from control_api.login_guard import FREE_FAILURES, MAX_BACKOFF_S, InMemoryLoginGuard, RedisLoginGuard, backoff_s
from control_api.models import RegistryModel, utcnow
from control_api.security import issue_token
from control_api.settings import Settings
from tests.audio_bombs import flac
from voiceflow_edge.servers import MIN_PASSWORD_CHARS, uvicorn_options

ClientFor = Callable[..., Any]


def test_upload_bombs_get_4xx_with_the_production_validator(db_settings: Settings, client_for: ClientFor) -> None:
    client = client_for(db_settings, validate_audio=engine_validate_audio)
    admin = login(client)
    lying = flac(np.zeros(16000, dtype=np.float32), 16000, total_samples=(1 << 36) - 1)
    r = client.post("/api/inference/batch", files=[("files", ("a.flac", lying, "audio/flac"))], headers=admin)
    assert r.status_code == 413, r.text
    wide = flac(np.zeros((4096, 8), dtype=np.float32), 655350, total_samples=655350 * 3 * 3600)
    r = client.post("/api/inference/batch", files=[("files", ("b.flac", wide, "audio/flac"))], headers=admin)
    assert r.status_code == 422, r.text
    assert "655350 Hz" in r.json()["detail"]
    r = client.post(
        "/api/inference/batch", files=[("files", ("c.wav", b"RIFF\0\0\0\0WAVEjunk" * 4, "x"))], headers=admin
    )
    assert r.status_code == 422
    assert "object at 0x" not in r.text
    assert not list((db_settings.storage_dir / "staging").iterdir())


# --- NUL bytes: 4xx at the edge on both databases, and the failed login keeps its audit row ---------------

NUL_PATHS = [
    ("GET", "/api/models?name=a%00b"),
    ("GET", "/api/models?state=ready%00"),
    ("GET", "/api/audit?username=ad%00min"),
    ("GET", "/api/models/x%00y"),
    ("POST", "/api/models/x%00y/export"),
    ("PUT", "/api/models/x%00y/activate"),
    ("GET", "/api/inference/batch/j%00b"),
    ("GET", "/api/inference/batch/j%00b/rttm"),
]


def test_nul_bytes_are_4xx_not_500(db_settings: Settings, client_for: ClientFor, tmp_path: Path) -> None:
    (tmp_path / "refs").mkdir()
    client = client_for(with_(db_settings, reference_root=str(tmp_path / "refs")))
    admin = login(client)
    for method, path in NUL_PATHS:
        r = client.request(method, path, headers=admin)
        assert r.status_code == 400, (method, path, r.status_code, r.text)
    r = client.post("/auth/login", json={"username": "adm\x00in", "password": "whatever"})
    assert r.status_code == 422, r.text
    r = client.post("/api/inference/batch", data={"references": "a\x00.wav"}, headers=admin)
    assert r.status_code == 422, r.text
    rows = client.get("/api/audit", params={"limit": 50}, headers=admin).json()
    logins = [row for row in rows if row["action"] == "POST /auth/login" and row["status_code"] == 422]
    assert logins and logins[0]["username"] == "adm\\x00in"
    assert client.get("/api/models", headers=admin).status_code == 200  # the database is still fine


# --- authentication and the size limit before the body ------------------------------------------------------


def call_app(app: Any, method: str, path: str, headers: dict[str, str], chunks: list[bytes]) -> tuple[int, int]:
    """Drive the ASGI app by hand: (response status, how many body chunks the app pulled)."""
    pulled = 0
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled < len(chunks):
            pulled += 1
            return {"type": "http.request", "body": chunks[pulled - 1], "more_body": pulled < len(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            if status >= 400:  # a refusal cuts the connection: the client must stop sending its body
                assert (b"connection", b"close") in message["headers"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    return status, pulled


MULTIPART = {"Content-Type": "multipart/form-data; boundary=xyz", "Transfer-Encoding": "chunked"}


def test_anonymous_chunked_upload_is_refused_before_its_body(tmp_path: Path, client_for: ClientFor) -> None:
    settings = Settings(state_dir=tmp_path, jwt_secret="s" * 40, admin_password="admin-password-1")
    client = client_for(settings)
    chunks = [b"--xyz\r\nContent-Disposition: form-data; name=files; filename=a.wav\r\n\r\n"] + [b"\0" * 65536] * 50
    status, pulled = call_app(client.app, "POST", "/api/inference/batch", MULTIPART, chunks)
    assert (status, pulled) == (401, 0)
    viewer_token = issue_token("v", "viewer", secret="s" * 40, ttl_s=60)
    status, pulled = call_app(
        client.app, "POST", "/api/inference/batch", {**MULTIPART, "Authorization": f"Bearer {viewer_token}"}, chunks
    )
    assert (status, pulled) == (403, 0)
    assert not (settings.storage_dir / "staging").exists() or not list((settings.storage_dir / "staging").iterdir())


def test_chunked_bodies_are_capped_while_they_arrive(tmp_path: Path, client_for: ClientFor) -> None:
    settings = Settings(
        state_dir=tmp_path, jwt_secret="s" * 40, admin_password="admin-password-1", max_upload_bytes=100_000
    )
    client = client_for(with_(settings, max_files_per_job=1))
    token = issue_token("admin", "admin", secret="s" * 40, ttl_s=60)
    limit = 100_000 + MULTIPART_SLACK_BYTES
    chunks = [b"--xyz\r\nContent-Disposition: form-data; name=files; filename=a.wav\r\n\r\nRIFF"]
    chunks += [b"\0" * 65536] * (limit // 65536 + 20)
    status, pulled = call_app(
        client.app, "POST", "/api/inference/batch", {**MULTIPART, "Authorization": f"Bearer {token}"}, chunks
    )
    assert status == 413
    assert pulled <= limit // 65536 + 2  # stopped at the limit, not at the end of the body
    # A JSON route takes at most MAX_JSON_BODY_BYTES, chunked or not.
    json_chunks = [b"{" + b" " * 65536] * (MAX_JSON_BODY_BYTES // 65536 + 5)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    status, pulled = call_app(client.app, "POST", "/api/models/train", headers, json_chunks)
    assert status == 413
    assert pulled <= MAX_JSON_BODY_BYTES // 65536 + 1


def test_staging_left_by_a_killed_upload_is_removed_at_start(tmp_path: Path, client_for: ClientFor) -> None:
    settings = Settings(state_dir=tmp_path, jwt_secret="s" * 40)
    stale = settings.storage_dir / "staging" / "deadbeef"
    stale.mkdir(parents=True)
    (stale / "0000.wav").write_bytes(b"RIFF" + b"\0" * 1000)
    old = time.time() - 3600
    for path in (stale / "0000.wav", stale):
        os.utime(path, (old, old))
    live = settings.storage_dir / "staging" / "cafef00d"
    live.mkdir()
    (live / "0000.wav").write_bytes(b"RIFF")
    client_for(settings)
    assert not stale.exists()
    assert live.exists()  # another process may be receiving it right now


# --- login throttling per (client, account), proxies, the SQLite file's mode ------------------------------


def test_wrong_passwords_slow_the_guesser_without_locking_out_the_owner(
    db_settings: Settings, client_for: ClientFor
) -> None:
    client = client_for(db_settings)  # rate_limit 10 000: only the login guard can answer 429 here
    client.app.state.ctx.login_guard = InMemoryLoginGuard(clock=lambda: 1000.0)  # time stands still
    wrong = {"username": "admin", "password": "not-the-password"}
    codes = [client.post("/auth/login", json=wrong).status_code for _ in range(FREE_FAILURES + 2)]
    assert codes == [401] * FREE_FAILURES + [429] * 2
    blocked = client.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
    # The owner, from another address, is not locked out by the guesser.
    with TestClient(client.app, client=("203.0.113.9", 4000)) as owner:
        assert owner.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).status_code == 200


def test_backoff_grows_and_a_success_clears_it() -> None:
    now = [1000.0]
    guard = InMemoryLoginGuard(clock=lambda: now[0])
    assert [guard.failed("k") for _ in range(FREE_FAILURES)][-1] == 1.0
    assert guard.retry_after("k") == 1.0
    assert guard.failed("k") == 2.0 and guard.failed("k") == 4.0
    assert backoff_s(100) == MAX_BACKOFF_S
    now[0] += 4.0
    assert guard.retry_after("k") == 0.0
    guard.succeeded("k")
    assert guard.failed("k") == 0.0


def test_redis_login_guard_is_shared(redis_url: str, redis_prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    first, second = RedisLoginGuard(client, redis_prefix), RedisLoginGuard(client, redis_prefix)
    for _ in range(FREE_FAILURES):
        first.failed("1.2.3.4|admin")
    assert second.retry_after("1.2.3.4|admin") > 0
    assert second.retry_after("5.6.7.8|admin") == 0
    second.succeeded("1.2.3.4|admin")
    assert first.retry_after("1.2.3.4|admin") == 0


def test_x_forwarded_for_is_believed_only_from_configured_proxies() -> None:
    assert uvicorn_options()["proxy_headers"] is False
    options = uvicorn_options("10.0.0.1, 10.0.0.2")
    assert options["proxy_headers"] is True and options["forwarded_allow_ips"] == "10.0.0.1, 10.0.0.2"

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = str(scope["client"][0]).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    def client_seen(**options: Any) -> str:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", **options)
        server = uvicorn.Server(config)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
        thread.start()
        try:
            while not server.started:
                time.sleep(0.01)
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
            return httpx.get(url, headers={"X-Forwarded-For": "198.51.100.7"}, timeout=10).text
        finally:
            server.should_exit = True
            thread.join(10)
            sock.close()

    assert client_seen(**uvicorn_options()) == "127.0.0.1"  # uvicorn's default believed this local peer
    assert client_seen(**uvicorn_options("127.0.0.1")) == "198.51.100.7"


def test_sqlite_database_is_created_private(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", jwt_secret="s" * 40)
    engine = make_engine(settings)
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.commit()
    engine.dispose()
    db = tmp_path / "state" / "control_api.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700


# --- secrets: generated when unset, refused when weak on a network address ---------------------------------


def serve_args(host: str) -> argparse.Namespace:
    return argparse.Namespace(host=host, port=1, workers=1, embedded_workers=None, log_level="warning")


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"VOICEFLOW_JWT_SECRET": "dev-only-change-me-0123456789abcdef"}, "well-known default"),
        ({"VOICEFLOW_JWT_SECRET": "x"}, "shorter than 32"),
        ({"VOICEFLOW_ADMIN_PASSWORD": "password"}, "VOICEFLOW_ADMIN_PASSWORD is a well-known default"),
    ],
)
def test_api_refuses_a_network_address_with_weak_secrets(
    env: dict[str, str], problem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("VOICEFLOW_STATE_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not start"))
    assert cli._serve(serve_args("0.0.0.0")) == 2
    assert problem in capsys.readouterr().err


def test_admin_password_is_generated_private_when_unset(tmp_path: Path, client_for: ClientFor) -> None:
    path = tmp_path / "secrets" / "admin_password"
    client = client_for(Settings(state_dir=tmp_path / "state", admin_password_file=str(path)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    password = path.read_text().strip()
    assert len(password) >= MIN_PASSWORD_CHARS
    login(client, password=password)
    assert stat.S_IMODE((tmp_path / "state" / "jwt_secret").stat().st_mode) == 0o600


# --- interrupted work resumes within seconds ------------------------------------------------------------------


def test_a_killed_workers_file_is_taken_over_within_seconds_by_default(db_settings: Settings, tmp_path: Path) -> None:
    lease_s = Settings().lease_s
    assert lease_s <= 15  # was 300: a file interrupted by a crash waited five minutes
    factory = factory_for(db_settings)
    add_job(factory, tmp_path, 1)
    claim = functools.partial(queue.claim_next, work=jobs.FILES, lease_s=lease_s)
    start = utcnow()
    with session_scope(factory) as session:
        claimed = claim(session, worker_id="killed", now=start)
        assert claimed is not None
        file_id = claimed.id
    # While its worker lives, the heartbeat (every lease_s / 3) keeps pushing the lease forward ...
    beat = start + timedelta(seconds=lease_s / 3)
    with session_scope(factory) as session:
        assert queue.extend_lease(session, jobs.FILES, file_id, worker_id="killed", lease_s=lease_s, now=beat)
    with session_scope(factory) as session:
        assert claim(session, worker_id="new", now=start + timedelta(seconds=lease_s + 1)) is None
    # ... and once the heartbeats stop (SIGKILL), a restarted worker takes the file over within lease_s.
    with session_scope(factory) as session:
        taken = claim(session, worker_id="new", now=beat + timedelta(seconds=lease_s + 0.5))
        assert taken is not None and taken.claimed_by == "new"


# --- training: paths confined to roots, viewers read one line of a failure ----------------------------------


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"data": {"data_root": "/etc"}}, "data_root"),
        ({"data": {"data_root": "relative/data"}}, "data_root"),
        ({"data": {"ami": "../../../etc"}}, "ami"),
        ({"data": {"librispeech": "/etc"}}, "librispeech"),
        ({"data": {"ami_files": ["../../shadow"]}}, "ami_files"),
        ({"cache_dir": "/home/someone/.ssh"}, "cache_dir"),
    ],
)
def test_training_paths_outside_the_roots_are_refused(
    config: dict[str, Any], key: str, db_settings: Settings, client_for: ClientFor, tmp_path: Path
) -> None:
    client = client_for(with_(db_settings, train_roots=str(tmp_path / "datasets")))
    r = client.post("/api/models/train", json={"name": "m", "config": config}, headers=login(client))
    assert r.status_code == 422, r.text
    assert key in json.dumps(r.json()["detail"])


def test_training_paths_inside_the_roots_are_accepted(tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    (root / "ami").mkdir(parents=True)
    (tmp_path / "escape").symlink_to("/etc")
    train_paths.confine({"data": {"data_root": str(root), "ami": "ami"}, "cache_dir": str(root / "c")}, [root])
    with pytest.raises(training.ConfigError, match="training roots"):
        train_paths.confine({"data": {"data_root": str(tmp_path / "escape")}}, [tmp_path])  # a symlink out
    assert Path("/data") in train_paths.parse_roots("", tmp_path)


def test_viewers_read_one_line_of_a_failed_jobs_error(db_settings: Settings, client_for: ClientFor) -> None:
    client = client_for(db_settings)
    admin = login(client)
    created = client.post("/api/models/train", json={"name": "m"}, headers=admin)
    assert created.status_code == 202, created.text
    model_id = created.json()["id"]
    traceback = (
        "train exited with 1: Traceback (most recent call last):\n"
        '  File "/srv/voiceflow/pipelines/training/loop.py", line 12, in main\n'
        "    secret_internal_call()\n"
        "ValueError: data root has no librispeech folder"
    )
    with session_scope(client.app.state.ctx.sessions) as session:
        session.get(RegistryModel, model_id).error = traceback
    with session_scope(client.app.state.ctx.sessions) as session:
        users.create_user(session, "vera", "viewer-password-1", "viewer")
    viewer = login(client, "vera", "viewer-password-1")
    one_line = "train exited with 1: ValueError: data root has no librispeech folder"
    assert client.get(f"/api/models/{model_id}", headers=viewer).json()["error"] == one_line
    assert client.get("/api/models", headers=viewer).json()["items"][0]["error"] == one_line
    assert client.get(f"/api/models/{model_id}", headers=admin).json()["error"] == traceback


def test_a_stalled_upload_body_is_abandoned() -> None:
    async def run() -> None:
        calls = 0

        async def receive() -> dict[str, Any]:
            nonlocal calls
            calls += 1
            if calls == 1:
                return {"type": "http.request", "body": b"--xyz\r\n", "more_body": True}
            await asyncio.Event().wait()  # the client stopped sending
            raise AssertionError("unreachable")

        capped = edge.capped_receive(receive, limit=1 << 20, idle_s=0.2)
        await capped()
        with pytest.raises(StarletteHTTPException) as info:
            await capped()
        assert info.value.status_code == 408

    asyncio.run(run())
