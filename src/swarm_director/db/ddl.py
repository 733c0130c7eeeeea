"""DDL of one dialect, run when a schema is built from the models (``create_all``)."""

from __future__ import annotations

from sqlalchemy import DDL


def dialect_ddl(statement: str, dialect: str) -> DDL:
    """``statement`` as a DDL element that runs on ``dialect`` only. DDL() applies
    %-formatting to its text, so a literal ``%`` (SQLite's ``strftime('%s', ...)``) is
    escaped first."""
    rendered: DDL = DDL(statement.replace("%", "%%"))  # type: ignore[no-untyped-call]
    return rendered.execute_if(dialect=dialect)
