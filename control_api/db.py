"""Database engine, sessions and migrations (Alembic, applied at start)."""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from control_api.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Serialises concurrent `alembic upgrade` from several API/worker processes starting at once.
_MIGRATION_LOCK_KEY = zlib.crc32(b"voiceflow.control_api.migrations")
# Alembic's `context` is process-global: two threads migrating at once would share it.
_MIGRATION_THREAD_LOCK = threading.Lock()


def normalize_database_url(url: str) -> str:
    """Plain `postgres://` / `postgresql://` URLs (as cloud providers hand them out) use psycopg 3,
    the driver this package installs, rather than SQLAlchemy's default psycopg2."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(settings: Settings, *, pool_size: int = 10) -> Engine:
    url = normalize_database_url(settings.effective_database_url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            create_private_file(Path(path))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args = {}
    if settings.db_schema:
        # Every pooled connection sees only this schema: how tests get a private database each.
        connect_args["options"] = f"-csearch_path={settings.db_schema}"
    return create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, connect_args=connect_args
    )


def create_private_file(path: Path) -> None:
    """Create the SQLite file 0600 (in a 0700 folder when we make it) before SQLite opens it: it holds
    password hashes and the audit trail, and SQLite would create it (and its -wal and -shm, which copy the
    database file's mode) world-readable under a usual umask."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # WAL lets readers proceed while a worker writes; busy_timeout turns lock contention into waiting.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: committed when the block ends normally, rolled back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the database (or the configured PostgreSQL schema) to `revision`."""
    with _MIGRATION_THREAD_LOCK, engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Transaction-scoped lock: released by the commit that also makes the migration visible.
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Step the schema back to `revision` ("base": nothing); for operators rolling back a release."""
    with _MIGRATION_THREAD_LOCK, engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


def ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
