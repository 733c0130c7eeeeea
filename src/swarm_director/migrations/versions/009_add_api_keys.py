"""API keys with scopes; key creation and revocation in the audit trail.

Revision ID: 009_add_api_keys
Revises: 008_partition_agent_logs
Create Date: 2026-12-02

Only a hash of each secret is stored. ``maintenance_events.operation`` gains ``key_create``
and ``key_revoke``: its CHECK constraint is replaced (SQLite rebuilds the table in batch mode).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "009_add_api_keys"
down_revision: str | None = "008_partition_agent_logs"
branch_labels: str | None = None
depends_on: str | None = None

TIMESTAMP = sa.DateTime(timezone=True)
_OLD_OPERATIONS = (
    "migrate",
    "seed",
    "reset",
    "backup",
    "restore",
    "verify",
    "optimize",
    "cleanup",
    "check",
)
_NEW_OPERATIONS = (*_OLD_OPERATIONS, "key_create", "key_revoke")


def _in_list(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _operations_check(values: tuple[str, ...]) -> None:
    with op.batch_alter_table("maintenance_events", recreate="auto") as batch_op:
        batch_op.drop_constraint(op.f("ck_maintenance_events_operation"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_maintenance_events_operation"), _in_list("operation", values)
        )


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("last_used_at", TIMESTAMP, nullable=True),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
        sa.UniqueConstraint("key_id", name=op.f("uq_api_keys_key_id")),
        sa.CheckConstraint(
            _in_list("scope", ("read", "write", "admin")), name=op.f("ck_api_keys_scope")
        ),
    )
    _operations_check(_NEW_OPERATIONS)


def downgrade() -> None:
    # Events of the two new kinds cannot satisfy the old CHECK: they go with the feature.
    op.execute(
        sa.text("DELETE FROM maintenance_events WHERE operation IN ('key_create', 'key_revoke')")
    )
    _operations_check(_OLD_OPERATIONS)
    op.drop_table("api_keys")
