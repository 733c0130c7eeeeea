"""DDL of one dialect, run when a schema is built from the models (``create_all``)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import DDL


def dialect_ddl(statement: str, dialect: str) -> DDL:
    """``statement`` as a DDL element that runs on ``dialect`` only. DDL() applies
    %-formatting to its text, so a literal ``%`` (SQLite's ``strftime('%s', ...)``) is
    escaped first."""
    rendered: DDL = DDL(statement.replace("%", "%%"))  # type: ignore[no-untyped-call]
    return rendered.execute_if(dialect=dialect)


def dropped_triggers(
    dialect: str,
    pg_triggers: Iterable[tuple[str, str]],
    pg_functions: Iterable[str],
    sqlite_triggers: Iterable[str],
) -> list[str]:
    """The statements that drop row triggers (PostgreSQL: ``(name, table)`` each, then their
    functions; SQLite: names), each only if it exists. The names are the models' constants."""
    if dialect == "postgresql":
        return [
            *(f"DROP TRIGGER IF EXISTS {name} ON {table}" for name, table in pg_triggers),
            *(f"DROP FUNCTION IF EXISTS {name}()" for name in pg_functions),
        ]
    return [f"DROP TRIGGER IF EXISTS {name}" for name in sqlite_triggers]
