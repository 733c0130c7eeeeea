"""Initial schema: agents, tasks, agent_logs, drafts, email_messages.

Revision ID: 001_initial_schema
Revises:
Create Date: 2026-11-23

Agents have no hierarchy yet (002) and no analytics columns, tasks no conversation (003).
Types are spelled out here rather than imported from the models, so that later changes to the
models cannot change what this revision creates. Every constraint and index name is given
explicitly (``op.f``) and equals the one the models' naming convention produces.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "001_initial_schema"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

#: UTCDateTime in the models: timestamptz on PostgreSQL, DATETIME (naive UTC) on SQLite.
TIMESTAMP = sa.DateTime(timezone=True)
#: JSONType in the models.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
#: 64-bit ids on PostgreSQL; INTEGER PRIMARY KEY (the rowid alias) on SQLite.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("agent_type", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("capabilities", JSON, nullable=False),
        sa.Column("config", JSON, nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("name", name=op.f("uq_agents_name")),
        sa.CheckConstraint(
            "agent_type IN ('supervisor', 'coordinator', 'worker', 'specialist')",
            name=op.f("ck_agents_agent_type"),
        ),
        sa.CheckConstraint(
            "status IN ('idle', 'active', 'busy', 'offline', 'error')",
            name=op.f("ck_agents_status"),
        ),
    )
    op.create_index(op.f("ix_agents_agent_type_status"), "agents", ["agent_type", "status"])

    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("user_id", sa.String(100), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("priority", sa.String(20), nullable=False),
        sa.Column("assigned_agent_id", sa.Integer(), nullable=True),
        sa.Column("parent_task_id", sa.Integer(), nullable=True),
        sa.Column("completed_at", TIMESTAMP, nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.ForeignKeyConstraint(
            ["assigned_agent_id"],
            ["agents.id"],
            name=op.f("fk_tasks_assigned_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["parent_task_id"],
            ["tasks.id"],
            name=op.f("fk_tasks_parent_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "type IN ('email_draft', 'document_review', 'communication', 'analysis')",
            name=op.f("ck_tasks_type"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'in_progress', 'completed', 'failed')",
            name=op.f("ck_tasks_status"),
        ),
        sa.CheckConstraint(
            "priority IN ('low', 'medium', 'high', 'critical')",
            name=op.f("ck_tasks_priority"),
        ),
    )
    op.create_index(op.f("ix_tasks_status_id"), "tasks", ["status", "id"])
    op.create_index(op.f("ix_tasks_type_id"), "tasks", ["type", "id"])
    op.create_index(op.f("ix_tasks_user_id_id"), "tasks", ["user_id", "id"])
    op.create_index(op.f("ix_tasks_assigned_agent_id_id"), "tasks", ["assigned_agent_id", "id"])
    op.create_index(op.f("ix_tasks_parent_task_id_id"), "tasks", ["parent_task_id", "id"])

    op.create_table(
        "agent_logs",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("agent_type", sa.String(50), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("timestamp", TIMESTAMP, nullable=False),
        sa.Column("log_level", sa.String(20), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("session_id", sa.String(100), nullable=True),
        sa.Column("metadata", JSON, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_logs")),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_agent_logs_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_logs_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(
            "log_level IN ('debug', 'info', 'warning', 'error')",
            name=op.f("ck_agent_logs_log_level"),
        ),
    )
    op.create_index(
        op.f("ix_agent_logs_task_id_timestamp_id"), "agent_logs", ["task_id", "timestamp", "id"]
    )
    op.create_index(
        op.f("ix_agent_logs_agent_id_timestamp"), "agent_logs", ["agent_id", "timestamp"]
    )
    op.create_index(
        op.f("ix_agent_logs_session_id_timestamp"), "agent_logs", ["session_id", "timestamp"]
    )
    op.create_index(
        op.f("ix_agent_logs_log_level_timestamp"), "agent_logs", ["log_level", "timestamp"]
    )
    op.create_index(op.f("ix_agent_logs_timestamp_id"), "agent_logs", ["timestamp", "id"])

    op.create_table(
        "drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("author_agent_id", sa.Integer(), nullable=True),
        sa.Column("reviewer_agent_id", sa.Integer(), nullable=True),
        sa.Column("review_notes", sa.Text(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drafts")),
        sa.UniqueConstraint("task_id", "version", name=op.f("uq_drafts_task_id_version")),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_drafts_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["author_agent_id"],
            ["agents.id"],
            name=op.f("fk_drafts_author_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_agent_id"],
            ["agents.id"],
            name=op.f("fk_drafts_reviewer_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'under_review', 'approved', 'rejected')",
            name=op.f("ck_drafts_status"),
        ),
    )
    op.create_index(op.f("ix_drafts_author_agent_id"), "drafts", ["author_agent_id"])
    op.create_index(op.f("ix_drafts_reviewer_agent_id"), "drafts", ["reviewer_agent_id"])

    op.create_table(
        "email_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(998), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("sender", sa.String(320), nullable=True),
        sa.Column("cc", JSON, nullable=False),
        sa.Column("bcc", JSON, nullable=False),
        sa.Column("draft_id", sa.Integer(), nullable=True),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_messages")),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_email_messages_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["draft_id"],
            ["drafts.id"],
            name=op.f("fk_email_messages_draft_id_drafts"),
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'queued', 'sent', 'failed', 'delivered')",
            name=op.f("ck_email_messages_status"),
        ),
    )
    op.create_index(op.f("ix_email_messages_task_id"), "email_messages", ["task_id"])
    op.create_index(op.f("ix_email_messages_draft_id"), "email_messages", ["draft_id"])
    op.create_index(op.f("ix_email_messages_status_id"), "email_messages", ["status", "id"])


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes with it.
    op.drop_table("email_messages")
    op.drop_table("drafts")
    op.drop_table("agent_logs")
    op.drop_table("tasks")
    op.drop_table("agents")
