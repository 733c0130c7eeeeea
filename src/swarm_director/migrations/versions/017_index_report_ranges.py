"""Indexes for the reports' ranges: emails by sending time, approved drafts by time, and the
history's two partial indexes with the entity first.

Revision ID: 017_index_report_ranges
Revises: 016_add_history_error_message
Create Date: 2026-12-07

The emails report counted the emails sent in its range by reading every email ever sent, and
the drafts report every draft ever written: fine for a month of data, a year's worth for a
month's report later. ``ix_email_messages_sent_at`` and ``ix_drafts_status_updated_at`` (with
the version, so the report reads the index alone) read the range only.

The history's partial indexes of failed steps and of email changes now start with the entity.
Without statistics (no ``ANALYZE`` yet: ``db optimize``, ``db maintain``) SQLite's planner
took ``entity = 'task'`` for selective and read every task step through
``ix_history_entity_entity_id_id`` instead of the range's failed steps; with the entity in
front, the partial index matches more of the query's terms and is the one chosen.

On PostgreSQL each ``CREATE INDEX`` holds writes to its table while it builds (the partial
ones read the history once each); the downgrade puts the indexes back as 016 left them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "017_index_report_ranges"
down_revision: str | None = "016_add_history_error_message"
branch_labels: str | None = None
depends_on: str | None = None

_PARTIAL = {
    "ix_history_failed_at": "action IN ('fail', 'retry', 'expire')",
    "ix_history_email_at": "entity = 'email'",
}
_BEFORE = {
    "ix_history_failed_at": ["at", "entity", "entity_id", "error_message"],
    "ix_history_email_at": ["at"],
}
_AFTER = {
    "ix_history_failed_at": ["entity", "at", "entity_id", "error_message"],
    "ix_history_email_at": ["entity", "at"],
}


def _history_indexes(columns: dict[str, list[str]]) -> None:
    for name, where in _PARTIAL.items():
        op.drop_index(name, table_name="history")
        op.create_index(
            name,
            "history",
            columns[name],
            unique=False,
            postgresql_where=sa.text(where),
            sqlite_where=sa.text(where),
        )


def upgrade() -> None:
    op.create_index("ix_email_messages_sent_at", "email_messages", ["sent_at"], unique=False)
    op.create_index(
        "ix_drafts_status_updated_at", "drafts", ["status", "updated_at", "version"], unique=False
    )
    _history_indexes(_AFTER)


def downgrade() -> None:
    _history_indexes(_BEFORE)
    op.drop_index("ix_drafts_status_updated_at", table_name="drafts")
    op.drop_index("ix_email_messages_sent_at", table_name="email_messages")
