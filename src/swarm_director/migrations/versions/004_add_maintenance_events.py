"""Maintenance events: the audit trail of administrative actions.

Revision ID: 004_add_maintenance_events
Revises: 003_add_conversation_tracking
Create Date: 2026-11-23

One row per migrate, seed, reset, backup, restore, verify, optimize, cleanup or check, with how
it ended; ``db stats`` reads the last successful one of each kind through the index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "004_add_maintenance_events"
down_revision: str | None = "003_add_conversation_tracking"
branch_labels: str | None = None
depends_on: str | None = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "maintenance_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_events")),
        sa.CheckConstraint(
            "operation IN ('migrate', 'seed', 'reset', 'backup', 'restore', 'verify', "
            "'optimize', 'cleanup', 'check')",
            name=op.f("ck_maintenance_events_operation"),
        ),
        sa.CheckConstraint("status IN ('ok', 'failed')", name=op.f("ck_maintenance_events_status")),
    )
    op.create_index(
        op.f("ix_maintenance_events_operation_status_started_at"),
        "maintenance_events",
        ["operation", "status", "started_at"],
    )


def downgrade() -> None:
    op.drop_table("maintenance_events")
