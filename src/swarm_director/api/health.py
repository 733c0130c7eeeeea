"""Liveness, readiness and admin statistics."""

from __future__ import annotations

from flask import Response, current_app

from swarm_director import __version__
from swarm_director.api.common import blueprint, json_response
from swarm_director.errors import SchemaError
from swarm_director.ops.stats.collect import collect_stats
from swarm_director.schemas.health import HealthOut, ReadyOut, StatsOut
from swarm_director.web.context import database
from swarm_director.web.errors import ErrorResponse, error_response, unavailable_response
from swarm_director.web.replicas import replica_rows

bp = blueprint("health", "Liveness, readiness and statistics.", secured=False)
admin = blueprint("admin", "Operator views.")


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
        return unavailable_response("The database is unreachable.")
    if not at_head:
        head = migrate.head_revision()
        return error_response(
            503,
            "schema_behind",
            f"The database schema is at {current or 'no revision'}, head is {head}; "
            "run `swarm-director db upgrade`.",
            {"revision": current, "head": head},
        )
    return json_response(
        ReadyOut(status="ready", dialect=db.dialect, revision=current, replicas=replica_rows(db))
    )


@admin.get("/admin/stats", responses={200: StatsOut})
def admin_stats() -> Response:
    """Rows (estimates) and bytes per table and index, database size, last maintenance, slow
    statements, suggestions (what `swarm-director db stats` shows). Scans no table: rows come
    from the engine's statistics, so the answer costs the same on a million rows as on ten."""
    stats = collect_stats(database().engine)
    # Two facts under the API's names; what StatsOut does not name (the URL) stays out.
    fields = stats.as_dict() | {"size_bytes": stats.database_bytes, "last_maintenance": stats.last}
    return json_response(StatsOut.model_validate(fields))
