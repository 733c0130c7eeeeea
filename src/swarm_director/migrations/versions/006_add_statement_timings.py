"""Statement timings kept in the database, shared by every process.

Revision ID: 006_add_statement_timings
Revises: 005_add_idempotency_keys
Create Date: 2026-12-02

Each API process flushes its per-shape statement timings here (an UPSERT per shape, off the
request path) so ``db stats`` lists the slowest statements of every server of the database,
from any directory or host. The table is pruned to the slowest shapes on every flush.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "006_add_statement_timings"
down_revision: str | None = "005_add_idempotency_keys"
branch_labels: str | None = None
depends_on: str | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "statement_timings",
        sa.Column("shape_hash", sa.String(64), nullable=False),
        sa.Column("shape", sa.Text(), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("total_ms", sa.Float(), nullable=False),
        sa.Column("max_ms", sa.Float(), nullable=False),
        sa.Column("last_seen", TIMESTAMP, nullable=False),
        sa.Column("sources", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("shape_hash", name=op.f("pk_statement_timings")),
    )


def downgrade() -> None:
    op.drop_table("statement_timings")
