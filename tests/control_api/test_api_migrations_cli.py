"""Migrations match the models on both databases; the `api` commands work."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from api_support import HERE, REPO, with_
from sqlalchemy import inspect

from control_api import users
from control_api.cli import register
from control_api.db import downgrade, make_engine, make_sessionmaker, migrate, normalize_database_url, session_scope
from control_api.models import Base
from control_api.settings import Settings


def test_migrations_match_the_models_and_downgrade_cleanly(db_settings: Settings) -> None:
    engine = make_engine(db_settings)
    migrate(engine)
    migrate(engine)  # idempotent: a restart re-runs it
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate(engine)
    assert {"users", "models", "batch_jobs", "batch_files", "audit_log"} <= set(inspect(engine).get_table_names())


def test_database_urls_use_the_installed_driver() -> None:
    assert normalize_database_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_database_url("postgresql://h/db") == "postgresql+psycopg://h/db"
    assert normalize_database_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"
    assert normalize_database_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_settings_from_environment() -> None:
    settings = Settings.from_env(
        {
            "VOICEFLOW_RATE_LIMIT": "7",
            "VOICEFLOW_LEASE_S": "2.5",
            "VOICEFLOW_STATE_DIR": "/tmp/x",
            "OTHER": "1",
        }
    )
    assert (settings.rate_limit, settings.lease_s, settings.state_dir) == (7, 2.5, Path("/tmp/x"))
    with pytest.raises(ValueError, match=r"VOICEFLOW_RATE_LIMIT: .*valid integer.*\(got 'many'\)"):
        Settings.from_env({"VOICEFLOW_RATE_LIMIT": "many"})
    # An empty variable is a value here (no Redis key prefix), unlike the pod where it means unset.
    assert Settings.from_env({"VOICEFLOW_REDIS_PREFIX": ""}).redis_prefix == ""


def test_only_from_env_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEFLOW_RATE_LIMIT", "3")
    assert Settings().rate_limit == 100
    assert Settings.from_env().rate_limit == 3
    assert Settings.from_env(rate_limit=5).rate_limit == 5


def test_jwt_secret_is_generated_once_and_shared(tmp_path: Path) -> None:
    first = Settings(state_dir=tmp_path).resolved_jwt_secret()
    assert len(first) >= 32 and Settings(state_dir=tmp_path).resolved_jwt_secret() == first
    assert Settings(state_dir=tmp_path, jwt_secret="explicit").resolved_jwt_secret() == "explicit"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_module_imports_only_argparse() -> None:
    code = (
        "import sys, control_api.cli; print(sorted(m for m in sys.modules if m.startswith(('fastapi', 'sqlalchemy'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_create_user_command(db_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in db_settings.__dict__.items():
        monkeypatch.setenv(f"VOICEFLOW_{key.upper()}", str(value))
    monkeypatch.setattr(sys, "stdin", io.StringIO("a-good-password\n"))
    args = parse("api", "create-user", "olga", "--role", "operator", "--password-stdin")
    assert args.handler(args) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("another-password\n"))
    assert args.handler(args) == 1  # already exists
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    weak = parse("api", "create-user", "pat", "--password-stdin")
    assert weak.handler(weak) == 2
    engine = make_engine(db_settings)
    with session_scope(make_sessionmaker(engine)) as session:
        assert users.authenticate(session, "olga", "a-good-password") is not None
        user = users.find_user(session, "olga")
        assert user is not None and user.role == "operator"
        assert users.find_user(session, "pat") is None


def test_api_help_through_python_m() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)])}
    out = subprocess.run(
        [sys.executable, "-m", "control_api", "api", "--help"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and "create-user" in out.stdout and "worker" in out.stdout


def test_processes_starting_together_migrate_once_and_create_one_admin(db_settings: Settings) -> None:
    from sqlalchemy import func, select

    from control_api.models import User

    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        **{f"VOICEFLOW_{k.upper()}": str(v) for k, v in db_settings.__dict__.items()},
    }
    starts = [
        subprocess.Popen(
            [sys.executable, "-m", "control_api", "api", "migrate"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0].decode() for p in starts]
    assert [p.returncode for p in starts] == [0, 0, 0], outputs
    with session_scope(make_sessionmaker(make_engine(db_settings))) as session:
        assert session.execute(select(func.count()).select_from(User)).scalar() == 1


def test_a_weak_admin_password_stops_the_start_with_a_clear_message(db_settings: Settings) -> None:
    from control_api.app import build_context, prepare

    with pytest.raises(RuntimeError, match="VOICEFLOW_ADMIN_USERNAME/PASSWORD: password must be at least 8"):
        prepare(build_context(with_(db_settings, admin_password="short")))
