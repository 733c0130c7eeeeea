"""Agent hierarchy: agents.parent_id.

Revision ID: 002_add_agent_hierarchy
Revises: 001_initial_schema
Create Date: 2026-11-23

An agent may report to another; deleting the parent leaves its children without one
(ON DELETE SET NULL). Indexed for "children of an agent" and for walking the hierarchy.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "002_add_agent_hierarchy"
down_revision: str | None = "001_initial_schema"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # SQLite rebuilds the table to add the foreign key; env.py keeps foreign keys off meanwhile.
    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_agents_parent_id_agents"),
            "agents",
            ["parent_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(op.f("ix_agents_parent_id"), ["parent_id"])


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_index(op.f("ix_agents_parent_id"))
        batch_op.drop_constraint(op.f("fk_agents_parent_id_agents"), type_="foreignkey")
        batch_op.drop_column("parent_id")
