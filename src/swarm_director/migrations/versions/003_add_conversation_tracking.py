"""Conversation tracking: conversations, messages, participants, agent analytics.

Revision ID: 003_add_conversation_tracking
Revises: 002_add_agent_hierarchy
Create Date: 2026-11-23

Adds the three conversation tables, ``tasks.conversation_id`` and the agents' analytics columns
(total_conversations, total_messages_sent, average_response_time, last_conversation_at).

tasks and conversations reference each other. conversations is created first (its task_id
points at the existing tasks), then tasks gains conversation_id; the downgrade undoes it in the
opposite order, so neither side ever points at a missing table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "003_add_conversation_tracking"
down_revision: str | None = "002_add_agent_hierarchy"
branch_labels: str | None = None
depends_on: str | None = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_AGENT_COUNTERS = ("total_conversations", "total_messages_sent")


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("created_by_agent_id", sa.Integer(), nullable=True),
        sa.Column("participant_count", sa.Integer(), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("metadata", JSON, nullable=True),
        sa.Column("completed_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_conversations_task_id_tasks"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_agent_id"],
            ["agents.id"],
            name=op.f("fk_conversations_created_by_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(
            "status IN ('active', 'completed', 'archived')",
            name=op.f("ck_conversations_status"),
        ),
    )
    op.create_index(op.f("ix_conversations_status_id"), "conversations", ["status", "id"])
    op.create_index(op.f("ix_conversations_task_id"), "conversations", ["task_id"])
    op.create_index(
        op.f("ix_conversations_created_by_agent_id"), "conversations", ["created_by_agent_id"]
    )

    op.create_table(
        "messages",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("sender_agent_id", sa.Integer(), nullable=True),
        sa.Column("message_type", sa.String(20), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("metadata", JSON, nullable=True),
        sa.Column("parent_message_id", BIG_ID, nullable=True),
        sa.Column("thread_id", sa.String(100), nullable=True),
        sa.Column("is_edited", sa.Boolean(), nullable=False),
        sa.Column("edit_count", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_messages_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sender_agent_id"],
            ["agents.id"],
            name=op.f("fk_messages_sender_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["parent_message_id"],
            ["messages.id"],
            name=op.f("fk_messages_parent_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(
            "message_type IN ('text', 'system', 'error', 'notification')",
            name=op.f("ck_messages_message_type"),
        ),
    )
    op.create_index(op.f("ix_messages_conversation_id_id"), "messages", ["conversation_id", "id"])
    op.create_index(op.f("ix_messages_sender_agent_id"), "messages", ["sender_agent_id"])
    op.create_index(op.f("ix_messages_parent_message_id"), "messages", ["parent_message_id"])
    op.create_index(op.f("ix_messages_thread_id"), "messages", ["thread_id"])

    op.create_table(
        "conversation_participants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(50), nullable=False),
        sa.Column("joined_at", TIMESTAMP, nullable=False),
        sa.Column("left_at", TIMESTAMP, nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("last_read_message_id", BIG_ID, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_participants")),
        sa.UniqueConstraint(
            "conversation_id",
            "agent_id",
            name=op.f("uq_conversation_participants_conversation_id_agent_id"),
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_participants_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_conversation_participants_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["last_read_message_id"],
            ["messages.id"],
            name=op.f("fk_conversation_participants_last_read_message_id_messages"),
            ondelete="SET NULL",
        ),
    )
    op.create_index(
        op.f("ix_conversation_participants_agent_id"), "conversation_participants", ["agent_id"]
    )

    with op.batch_alter_table("tasks") as batch_op:
        batch_op.add_column(sa.Column("conversation_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_tasks_conversation_id_conversations"),
            "conversations",
            ["conversation_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(op.f("ix_tasks_conversation_id"), ["conversation_id"])

    # Existing agents start their counters at 0: a server default fills them in (SQLite can
    # ADD COLUMN ... NOT NULL only with a default). The models set these values in Python, so
    # the default is dropped again right after, leaving the schema equal to the models'.
    with op.batch_alter_table("agents") as batch_op:
        for name in _AGENT_COUNTERS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("average_response_time", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("last_conversation_at", TIMESTAMP, nullable=True))
    # A separate batch: on SQLite this one rebuilds the table, copying the filled-in columns.
    with op.batch_alter_table("agents") as batch_op:
        for name in _AGENT_COUNTERS:
            batch_op.alter_column(
                name, server_default=None, existing_type=sa.Integer(), existing_nullable=False
            )


def downgrade() -> None:
    # tasks first: its foreign key to conversations must go before that table does.
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.drop_index(op.f("ix_tasks_conversation_id"))
        batch_op.drop_constraint(op.f("fk_tasks_conversation_id_conversations"), type_="foreignkey")
        batch_op.drop_column("conversation_id")

    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_column("last_conversation_at")
        batch_op.drop_column("average_response_time")
        for name in reversed(_AGENT_COUNTERS):
            batch_op.drop_column(name)

    op.drop_table("conversation_participants")
    op.drop_table("messages")
    op.drop_table("conversations")
