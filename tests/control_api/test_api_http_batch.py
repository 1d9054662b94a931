"""Batch diarization over HTTP: uploads and references, per-file failures, and rejected uploads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_support import login, wait_for, wav_bytes, with_
from sqlalchemy import func, select

from control_api.db import session_scope
from control_api.models import BatchFile, BatchJob
from control_api.settings import Settings


def wait_job(client: Any, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/inference/batch/{job_id}", headers=headers).json()
        return body if body["progress"] == 1.0 else None

    body: dict[str, Any] = wait_for(finished)
    return body


def test_uploaded_files_of_every_format_are_diarized(db_settings: Settings, client_for: Callable[..., Any]) -> None:
    client = client_for(with_(db_settings, embedded_workers=2))
    admin = login(client)
    files = [
        ("files", ("call one.wav", wav_bytes(1.0), "audio/wav")),
        ("files", ("call2.flac", wav_bytes(0.6, fmt="FLAC"), "audio/flac")),
        # Named .wav, really Ogg Vorbis: accepted by content, stored as .ogg.
        ("files", ("call3.wav", wav_bytes(0.8, fmt="OGG"), "application/octet-stream")),
    ]
    submitted = client.post("/api/inference/batch", files=files, headers=admin)
    assert submitted.status_code == 202, submitted.text
    assert submitted.json()["files"] == 3
    job = wait_job(client, admin, submitted.json()["job_id"])
    assert job["state"] == "completed"
    assert [f["filename"] for f in job["files"]] == ["call_one.wav", "call2.flac", "call3.wav"]
    first = job["files"][0]
    assert first["segments"] == [
        {"start": 0.0, "end": 0.5, "speaker": "spk0"},
        {"start": 0.5, "end": 1.0, "speaker": "spk1"},
    ]
    assert first["rttm"].splitlines()[0].split()[:5] == ["SPEAKER", "call_one", "1", "0.000", "0.500"]
    stored = sorted(p.suffix for p in (db_settings.storage_dir / "jobs" / job["id"]).iterdir())
    assert stored == [".flac", ".ogg", ".wav"]


def test_job_of_several_files_with_one_corrupt(
    db_settings: Settings, client_for: Callable[..., Any], tmp_path: Path
) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()
    for name in ("a.wav", "b.wav", "d.wav"):
        (refs / name).write_bytes(wav_bytes(0.4))
    # Looks like a WAV by its first bytes, but is cut off mid-header: only decoding can tell.
    (refs / "c.wav").write_bytes(wav_bytes(0.4)[:30])
    client = client_for(with_(db_settings, embedded_workers=1, reference_root=str(refs)))
    admin = login(client)
    submitted = client.post(
        "/api/inference/batch",
        data={"references": ["a.wav", "b.wav", "c.wav", "d.wav"]},
        files=[("files", ("e.wav", wav_bytes(0.4), "audio/wav"))],
        headers=admin,
    )
    assert submitted.status_code == 202, submitted.text
    job = wait_job(client, admin, submitted.json()["job_id"])
    assert job["state"] == "completed_with_errors"
    by_name = {f["filename"]: f for f in job["files"]}
    assert {n: f["status"] for n, f in by_name.items()} == {
        "e.wav": "done",
        "a.wav": "done",
        "b.wav": "done",
        "c.wav": "failed",
        "d.wav": "done",
    }
    assert "cannot decode" in by_name["c.wav"]["error"] and by_name["c.wav"]["rttm"] is None
    combined = client.get(f"/api/inference/batch/{job['id']}/rttm", headers=admin)
    assert combined.headers["content-type"].startswith("text/plain")
    assert [line.split()[1] for line in combined.text.splitlines()] == [
        uri for uri in ("e", "a", "b", "d") for _ in range(2)
    ]


def assert_nothing_left(settings: Settings, client: Any) -> None:
    storage = settings.storage_dir
    leftovers = [p for p in storage.rglob("*") if p.is_file()]
    assert leftovers == [], leftovers
    with session_scope(client.app.state.ctx.sessions) as session:
        assert session.execute(select(func.count()).select_from(BatchJob)).scalar() == 0
        assert session.execute(select(func.count()).select_from(BatchFile)).scalar() == 0


@pytest.mark.parametrize(
    ("second_file", "limits", "status", "message"),
    [
        (("notes.wav", b"just some text, not audio at all", "audio/wav"), {}, 415, "not a WAV"),
        (("exe.flac", b"MZ\x90\x00" + b"\x00" * 500, "audio/flac"), {}, 415, "not a WAV"),
        (
            ("broken.wav", b"RIFF\x00\x10\x00\x00WAVE" + b"\xff" * 2000, "audio/wav"),
            {},
            422,
            "cannot be decoded",
        ),
        (("big.wav", wav_bytes(3.0), "audio/wav"), {"max_upload_bytes": 60_000}, 413, "byte limit"),
        (("long.wav", wav_bytes(3.0), "audio/wav"), {"max_audio_seconds": 2.0}, 413, "exceeds"),
    ],
    ids=["text", "exe", "undecodable", "oversized", "too-long"],
)
def test_rejected_upload_leaves_nothing_behind(
    db_settings: Settings,
    client_for: Callable[..., Any],
    second_file: tuple[str, bytes, str],
    limits: dict[str, Any],
    status: int,
    message: str,
) -> None:
    settings = with_(db_settings, **limits)
    client = client_for(settings)
    admin = login(client)
    files = [("files", ("good.wav", wav_bytes(0.5), "audio/wav")), ("files", second_file)]
    response = client.post("/api/inference/batch", files=files, headers=admin)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"] and second_file[0] in response.json()["detail"]
    assert_nothing_left(settings, client)


def test_request_body_over_the_limit_is_refused_before_reading(
    db_settings: Settings, client_for: Callable[..., Any]
) -> None:
    settings = with_(db_settings, max_upload_bytes=10_000, max_files_per_job=2)
    client = client_for(settings)
    admin = login(client)
    big = [("files", (f"f{i}.wav", wav_bytes(1.0), "audio/wav")) for i in range(2)]
    response = client.post("/api/inference/batch", files=big, headers=admin)
    assert response.status_code == 413
    assert_nothing_left(settings, client)
    last = client.get("/api/audit?limit=1", headers=admin).json()[0]
    assert (last["action"], last["status_code"], last["outcome"]) == ("POST /api/inference/batch", 413, "rejected")


def test_empty_and_too_many_and_bad_references(
    db_settings: Settings, client_for: Callable[..., Any], tmp_path: Path
) -> None:
    settings = with_(db_settings, max_files_per_job=2, reference_root=str(tmp_path))
    client = client_for(settings)
    admin = login(client)
    assert client.post("/api/inference/batch", headers=admin).status_code == 422
    three = [("files", (f"f{i}.wav", wav_bytes(0.1), "audio/wav")) for i in range(3)]
    assert client.post("/api/inference/batch", files=three, headers=admin).status_code == 413
    escape = client.post("/api/inference/batch", data={"references": ["../../etc/passwd"]}, headers=admin)
    assert escape.status_code == 422 and "outside" in escape.json()["detail"]
    assert client.get("/api/inference/batch/nope", headers=admin).status_code == 404
    assert_nothing_left(settings, client)


def test_viewers_cannot_submit_batches(db_settings: Settings, client_for: Callable[..., Any]) -> None:
    from control_api import users

    client = client_for(db_settings)
    with session_scope(client.app.state.ctx.sessions) as session:
        users.create_user(session, "vera", "password-123", "viewer")
    viewer = login(client, "vera", "password-123")
    files = [("files", ("a.wav", wav_bytes(0.1), "audio/wav"))]
    assert client.post("/api/inference/batch", files=files, headers=viewer).status_code == 403
    assert client.post("/api/inference/batch", files=files).status_code == 401


def test_job_listing_shows_own_jobs_and_admins_see_all(db_settings: Settings, client_for: Callable[..., Any]) -> None:
    from control_api import users

    client = client_for(db_settings)
    with session_scope(client.app.state.ctx.sessions) as session:
        users.create_user(session, "olga", "password-123", "operator")
        users.create_user(session, "omar", "password-123", "operator")
    olga, omar, admin = login(client, "olga", "password-123"), login(client, "omar", "password-123"), login(client)
    files = [("files", ("a.wav", wav_bytes(0.1), "audio/wav")), ("files", ("b.wav", wav_bytes(0.1), "audio/wav"))]
    olgas = [client.post("/api/inference/batch", files=files, headers=olga).json()["job_id"] for _ in range(2)]
    omars = client.post("/api/inference/batch", files=files, headers=omar).json()["job_id"]
    mine = client.get("/api/inference/batch", headers=olga).json()
    assert [j["id"] for j in mine] == olgas[::-1]  # newest first
    assert mine[0] | {"id": None, "created_at": None} == {
        "id": None,
        "state": "queued",
        "progress": 0.0,
        "created_by": "olga",
        "created_at": None,
        "files": 2,
        "failed": 0,
    }
    assert {j["id"] for j in client.get("/api/inference/batch", headers=admin).json()} == {*olgas, omars}
    assert len(client.get("/api/inference/batch?limit=1", headers=olga).json()) == 1
    # Someone else's job is not found (not forbidden: ids cannot be probed); an admin sees it.
    assert client.get(f"/api/inference/batch/{omars}", headers=olga).status_code == 404
    assert client.get(f"/api/inference/batch/{omars}/rttm", headers=olga).status_code == 404
    assert client.get(f"/api/inference/batch/{omars}", headers=admin).status_code == 200
