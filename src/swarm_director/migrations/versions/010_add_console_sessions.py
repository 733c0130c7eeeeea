"""Console sessions kept on the server.

Revision ID: 010_add_console_sessions
Revises: 009_add_api_keys
Create Date: 2026-12-06

A console cookie used to be the whole session: logging out cleared it in one browser, and a
copy kept working until it expired. Now the cookie names a row here (by the SHA-256 of a random
id) and logging out ends the row, for every worker and every server sharing the database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "010_add_console_sessions"
down_revision: str | None = "009_add_api_keys"
branch_labels: str | None = None
depends_on: str | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
        sa.UniqueConstraint("session_hash", name=op.f("uq_console_sessions_session_hash")),
    )
    op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"])


def downgrade() -> None:
    # Sessions are not worth keeping: after a downgrade every console user logs in again.
    op.drop_index("ix_console_sessions_expires_at", table_name="console_sessions")
    op.drop_table("console_sessions")
