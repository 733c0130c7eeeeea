"""Liveness, readiness and admin statistics."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from pydantic import BaseModel, Field

from swarm_director import __version__
from swarm_director.api.common import blueprint, json_response
from swarm_director.api.context import database
from swarm_director.api.errors import ErrorResponse, error_response
from swarm_director.errors import SchemaError
from swarm_director.ops.stats import collect_stats

bp = blueprint("health", "Liveness, readiness and statistics.", secured=False)
admin = blueprint("admin", "Operator views.")


class HealthOut(BaseModel):
    status: str = Field(description="Always `ok` when the process answers.")
    version: str


class ReadyOut(BaseModel):
    status: str = Field(description="`ready`.")
    dialect: str
    revision: str | None = Field(description="The database's schema revision (= head).")


class TableStats(BaseModel):
    name: str
    rows: int = Field(description="Rows: the engine's estimate (see rows_estimated).")
    rows_estimated: bool = Field(
        description="Always true here: rows come from planner statistics, not a count "
        "(`swarm-director db stats --exact` counts)."
    )
    bytes: int | None = Field(
        description="Bytes of the table and its indexes; null on SQLite, where measuring "
        "reads every page (`db stats --exact`)."
    )
    indexes: dict[str, int] = Field(description="Bytes per index.")


class StatsOut(BaseModel):
    dialect: str
    revision: str | None = Field(description="The database's schema revision.")
    head: str | None = Field(description="The newest revision this version knows.")
    size_bytes: int = Field(description="Bytes used by the database.")
    wal_bytes: int | None = Field(description="SQLite write-ahead log size (null elsewhere).")
    free_bytes: int | None = Field(description="SQLite free-list size (null elsewhere).")
    tables: list[TableStats]
    last_maintenance: dict[str, str | None] = Field(
        description="When backup, optimize, cleanup and check last succeeded (ISO 8601)."
    )
    analyzed: bool = Field(description="Whether planner statistics exist.")
    old_logs: int = Field(description="Log rows older than 30 days, counted up to a cap.")
    old_logs_capped: bool = Field(description="True: there are at least `old_logs`.")
    suggestions: list[str] = Field(description="What an operator should consider running.")
    slow_statements: list[dict[str, Any]] = Field(
        description="Slowest statement shapes recorded by every server process of this "
        "database (count, mean, worst ms, sources)."
    )


@bp.get("/health", responses={200: HealthOut})
def health() -> Response:
    """Liveness: the process answers. Needs no token and never touches the database."""
    return json_response(HealthOut(status="ok", version=__version__))


@admin.get("/ready", responses={200: ReadyOut, 503: ErrorResponse})
def ready() -> Response:
    """Readiness: 200 when the database is reachable and its schema is at head, else 503."""
    from swarm_director.migrations import migrate

    db = database()
    try:
        at_head = migrate.is_at_head(db.engine)
        current = migrate.current_revision(db.engine)
    except SchemaError as error:  # at a revision this version does not know
        return error_response(503, error.code, error.message)
    except Exception:
        current_app.logger.warning("readiness check: database unreachable", exc_info=True)
        return error_response(503, "unavailable", "The database is unreachable.")
    if not at_head:
        head = migrate.head_revision()
        return error_response(
            503,
            "schema_behind",
            f"The database schema is at {current or 'no revision'}, head is {head}; "
            "run `swarm-director db upgrade`.",
            {"revision": current, "head": head},
        )
    return json_response(ReadyOut(status="ready", dialect=db.dialect, revision=current))


@admin.get("/admin/stats", responses={200: StatsOut})
def admin_stats() -> Response:
    """Rows (estimates) and bytes per table and index, database size, last maintenance, slow
    statements, suggestions (what `swarm-director db stats` shows). Scans no table: rows come
    from the engine's statistics, so the answer costs the same on a million rows as on ten."""
    stats = collect_stats(database().engine)
    return json_response(
        StatsOut(
            dialect=stats.dialect,
            revision=stats.revision,
            head=stats.head,
            size_bytes=stats.database_bytes,
            wal_bytes=stats.wal_bytes,
            free_bytes=stats.free_bytes,
            tables=[TableStats.model_validate(table) for table in stats.tables],
            last_maintenance=stats.last,
            analyzed=stats.analyzed,
            old_logs=stats.old_logs,
            old_logs_capped=stats.old_logs_capped,
            suggestions=stats.suggestions,
            slow_statements=stats.slow_statements,
        )
    )
