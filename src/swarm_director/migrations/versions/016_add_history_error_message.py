"""The history's error messages in a column of their own, in the failed steps' index.

Revision ID: 016_add_history_error_message
Revises: 015_add_attempt_counts
Create Date: 2026-12-07

The failures report's most frequent attempt errors grouped the range's failed steps by
``changes #>> '{last_error,1}'``: at 1 M tasks a month holds 166,000 of them, each on a heap
page of its own among the other steps, and reading them took 200 ms of the report's 250 on
PostgreSQL. ``history.error_message`` is the first 500 characters of a step's error, computed
by the database (PostgreSQL: a stored generated column; SQLite, which cannot add a stored
column to a table: a virtual one), and the partial index of the failed steps now holds every
column the report reads, so PostgreSQL answers from the index alone. 500 characters are at
most 2,000 bytes: an index entry stays under the B-tree's limit whatever the error (the whole
``changes`` in the index would not). On PostgreSQL the upgrade rewrites the history table
(the stored column), holding it meanwhile; the downgrade drops the column and puts the
index back as 014 made it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "016_add_history_error_message"
down_revision: str | None = "015_add_attempt_counts"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMN = {
    "postgresql": (
        "ALTER TABLE history ADD COLUMN error_message TEXT GENERATED ALWAYS AS "
        "(left(changes #>> '{last_error,1}', 500)) STORED"
    ),
    "sqlite": (
        "ALTER TABLE history ADD COLUMN error_message TEXT GENERATED ALWAYS AS "
        "(substr(json_extract(changes, '$.last_error[1]'), 1, 500)) VIRTUAL"
    ),
}
_FAILED = "action IN ('fail', 'retry', 'expire')"


def _index(columns: list[str]) -> None:
    op.create_index(
        "ix_history_failed_at",
        "history",
        columns,
        unique=False,
        postgresql_where=sa.text(_FAILED),
        sqlite_where=sa.text(_FAILED),
    )


def upgrade() -> None:
    conn = op.get_bind()
    conn.exec_driver_sql(_COLUMN[conn.dialect.name])
    op.drop_index("ix_history_failed_at", table_name="history")
    _index(["at", "entity", "entity_id", "error_message"])


def downgrade() -> None:
    op.drop_index("ix_history_failed_at", table_name="history")
    _index(["at"])
    op.get_bind().exec_driver_sql("ALTER TABLE history DROP COLUMN error_message")
