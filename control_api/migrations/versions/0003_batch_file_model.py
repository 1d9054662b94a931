"""Which model bundle diarized each batch file ({"version", "bundle_digest"}).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("batch_files", sa.Column("model", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batch_files") as batch:  # SQLite cannot drop a column in place
        batch.drop_column("model")
