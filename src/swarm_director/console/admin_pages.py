"""Console pages for admins: API keys (list, create with the secret shown once, revoke) and
"back up now" (see :mod:`.forms` for the checks every action passes).

Admin only, like ``/api/admin/*`` and ``swarm-director keys``: a lesser session sees neither
the page nor the buttons, and a forged POST gets 403. Keys go through
:mod:`swarm_director.store.keys` (as the CLI does: history and audit trail name the key that
acted); the backup through :func:`~swarm_director.ops.backup.create.create_backup`, with the
encryption the settings name, exactly as ``swarm-director db backup``.
"""

from __future__ import annotations

from flask import abort, url_for
from werkzeug.wrappers import Response as BaseResponse

from swarm_director.console import auth
from swarm_director.console.common import bp, render
from swarm_director.console.forms import (
    action,
    bad_field,
    confirm_first,
    done,
    form_enum,
    form_text,
)
from swarm_director.db.base import utcnow
from swarm_director.durations import parse_duration
from swarm_director.enums import ApiScope
from swarm_director.ops.backup.create import create_backup
from swarm_director.ops.backup.encryption import backup_key, backup_recipients
from swarm_director.ops.errors import BackupError
from swarm_director.redact import first_line
from swarm_director.store import keys
from swarm_director.web.context import database, session, state

ADMIN_ONLY = (
    "API keys are managed with a key of scope admin (as swarm-director keys and /api/admin/* "
    "are); this session's key cannot."
)


@bp.get("/keys")
def key_list() -> str:
    """Every API key: name, public id, scope, created, last used, expiry, revocation."""
    if not auth.allows(ApiScope.ADMIN):
        abort(403, description=ADMIN_ONLY)
    return render(
        "keys.html",
        title="API keys",
        keys=keys.list_keys(session()),
        scopes=list(ApiScope),
        now=utcnow(),
    )


@bp.post("/keys")
@action(ApiScope.ADMIN)
def create_key() -> str:
    """A new key; the page that answers shows its secret, once (never stored, never again)."""
    name = form_text("name", limit=100)
    assert name is not None
    scope = form_enum("scope", ApiScope)
    lifetime = form_text("expires", required=False, limit=20)
    try:
        expires_in = parse_duration(lifetime) if lifetime is not None else None
    except ValueError as error:
        raise bad_field("expires", first_line(str(error))) from None
    created = keys.create_key(session(), name, scope, expires_in=expires_in)
    return render("key_created.html", title="Key created", key=created.key, token=created.token)


@bp.post("/keys/revoke")
@action(ApiScope.ADMIN)
def revoke_key() -> BaseResponse | str:
    """Revoke a key now (asks first): its API calls and console sessions end at once."""
    name = form_text("name", limit=100)
    assert name is not None
    back = url_for("console.key_list")
    asked = confirm_first(
        f"Revoke the API key {name!r}? Everything using it (agents, console sessions) is "
        "refused from now on; this cannot be undone.",
        "Revoke the key",
        back,
    )
    if asked is not None:
        return asked
    keys.revoke_key(session(), name)
    return done(f"The API key {name!r} is revoked.", back)


@bp.post("/ops/backup")
@action(ApiScope.ADMIN)
def backup_now() -> BaseResponse:
    """Take a backup now, as ``swarm-director db backup`` (no pruning): into the backup
    folder, encrypted as the settings say, recorded in the audit trail."""
    settings = state().settings
    recipients = backup_recipients(settings)
    folder = settings.resolved_backup_dir()
    try:
        result = create_backup(
            database().engine,
            folder,
            key=None if recipients else backup_key(settings),
            recipients=recipients,
            kind="console",
        )
    except OSError as error:  # the folder: missing rights, a full disk (the trail has it)
        raise BackupError(
            f"The backup could not be written to {folder}: {first_line(str(error))}"
        ) from None
    rows = result.manifest.total_rows
    return done(f"Backup written: {result.path.name} ({rows} rows).", url_for("console.ops"))
