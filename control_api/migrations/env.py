"""Alembic environment: always run with a connection handed over by `control_api.db.migrate`."""

from __future__ import annotations

from alembic import context

from control_api.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by a bare `alembic` command line
    raise RuntimeError("run migrations through control_api.db.migrate (or `voiceflow api migrate`)")

context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
