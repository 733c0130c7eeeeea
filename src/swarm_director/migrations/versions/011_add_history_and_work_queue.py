"""History of every change, and the work queue's columns on tasks.

Revision ID: 011_add_history_and_work_queue
Revises: 010_add_console_sessions
Create Date: 2026-12-06

``history`` gets a row per create, update and delete of the swarm's entities (written by the
store in the transaction of the change). Tasks gain what a queue with leases needs (attempts,
maximum attempts, not-before time, lease token and expiry, claim time, last error, result) and
agents their last sign of life. Every column is added in place (no table rebuild on SQLite),
existing tasks get ``attempts = 0`` and ``max_attempts = 3``; the downgrade drops only what
this revision added.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "011_add_history_and_work_queue"
down_revision: str | None = "010_add_console_sessions"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column(
            "entity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column(
            "changes",
            JSON,
            nullable=False,
        ),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history")),
    )
    with op.batch_alter_table("history") as batch_op:
        batch_op.create_index("ix_history_actor_id", ["actor", "id"], unique=False)
        batch_op.create_index("ix_history_at", ["at"], unique=False)
        batch_op.create_index(
            "ix_history_entity_entity_id_id", ["entity", "entity_id", "id"], unique=False
        )

    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(sa.Column("last_seen_at", TIMESTAMP, nullable=True))

    with op.batch_alter_table("tasks") as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("max_attempts", sa.Integer(), server_default="3", nullable=False)
        )
        batch_op.add_column(sa.Column("not_before", TIMESTAMP, nullable=True))
        batch_op.add_column(sa.Column("lease_token", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "lease_expires_at",
                TIMESTAMP,
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("claimed_at", TIMESTAMP, nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "result",
                JSON,
                nullable=True,
            )
        )
        batch_op.create_index(
            "ix_tasks_status_lease_expires_at", ["status", "lease_expires_at"], unique=False
        )
        batch_op.create_index(
            "ix_tasks_status_priority_id", ["status", "priority", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.drop_index("ix_tasks_status_priority_id")
        batch_op.drop_index("ix_tasks_status_lease_expires_at")
        batch_op.drop_column("result")
        batch_op.drop_column("last_error")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_token")
        batch_op.drop_column("not_before")
        batch_op.drop_column("max_attempts")
        batch_op.drop_column("attempts")

    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_column("last_seen_at")

    with op.batch_alter_table("history") as batch_op:
        batch_op.drop_index("ix_history_entity_entity_id_id")
        batch_op.drop_index("ix_history_at")
        batch_op.drop_index("ix_history_actor_id")

    op.drop_table("history")
