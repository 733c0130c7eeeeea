"""Console page: operations (backups, audit trail, slow statements, table sizes, migrations).

Admin only, like ``/api/admin/*``: the audit trail names every API key, and the page shows
the backup folder and the slowest statements. A session with a lesser key gets 403.
"""

from __future__ import annotations

from flask import abort

from swarm_director.console import auth
from swarm_director.console.common import api_url, bp, enum_arg, here, int_arg, render
from swarm_director.console.pages import head_revision
from swarm_director.migrations import migrate
from swarm_director.models import ApiScope, MaintenanceOperation, MaintenanceStatus
from swarm_director.ops import audit, dbinfo
from swarm_director.ops.backup.manifest import list_backups
from swarm_director.ops.stats.collect import collect_stats
from swarm_director.web.context import connection, database, state
from swarm_director.web.replicas import replica_rows

AUDIT_PAGE = 50
ADMIN_ONLY = (
    "The operations page needs a key with scope admin (as /api/admin/* does); "
    "this session's key cannot read it."
)


@bp.get("/ops")
def ops() -> str:
    """Backups from their manifests with their verify results, the audit trail (filtered by
    operation and status, paged by id), slow statements, table sizes, migrations. Admin
    sessions only (403 otherwise)."""
    if not auth.allows(ApiScope.ADMIN):
        abort(403, description=ADMIN_ONLY)
    settings = state().settings
    db = database()
    operation = enum_arg("operation", MaintenanceOperation)
    status = enum_arg("status", MaintenanceStatus)
    before = int_arg("before_id")
    events = audit.list_events(
        db.engine, operation=operation, status=status, before_id=before, limit=AUDIT_PAGE + 1
    )
    older = None
    if len(events) > AUDIT_PAGE:
        events = events[:AUDIT_PAGE]
        older = here(before_id=events[-1]["id"])
    backup_dir = settings.resolved_backup_dir()
    backups = list(reversed(list_backups(backup_dir)))
    stats = collect_stats(db.engine)

    history = [(rev.revision, rev.doc) for rev in reversed(migrate.history())]
    return render(
        "ops.html",
        title="Operations",
        api=["/api/admin/stats", "/api/ready"],
        backup_dir=backup_dir,
        backups=backups,
        verified=audit.verify_results(db.engine),
        events=events,
        older=older,
        newest=here(before_id=None) if before else None,
        operations=list(MaintenanceOperation),
        event_statuses=list(MaintenanceStatus),
        filters={"operation": operation, "status": status},
        stats=stats,
        revision=dbinfo.schema_revision(connection()),
        head=head_revision(),
        history=history,
        replicas=replica_rows(db),
        max_lag=settings.replica_max_lag_s,
        check_s=settings.replica_check_s,
        api_url=api_url,
    )
