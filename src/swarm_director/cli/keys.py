"""``swarm-director keys``: API keys with a scope (create, list, revoke)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from swarm_director.cli.common import SwarmGroup, database_option, emit_json, json_option, opened
from swarm_director.cli.main import cli
from swarm_director.db.base import utcnow
from swarm_director.durations import parse_duration
from swarm_director.models import ApiKey, ApiScope
from swarm_director.store import keys as key_store


@cli.group(cls=SwarmGroup)
def keys() -> None:
    """API keys: `read` (every GET), `write` (read + changes + log ingest), `admin` (all,
    including /api/admin/*). Only a hash of each secret is stored."""


def _status(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _row(key: ApiKey, now: datetime) -> dict[str, Any]:
    return {
        "name": key.name,
        "key_id": key.key_id,
        "scope": key.scope.value,
        "status": _status(key, now),
        "created_at": _when(key.created_at),
        "last_used_at": _when(key.last_used_at),
        "expires_at": _when(key.expires_at),
        "revoked_at": _when(key.revoked_at),
    }


@keys.command("create")
@database_option
@click.argument("name")
@click.option(
    "--scope",
    required=True,
    type=click.Choice([s.value for s in ApiScope]),
    help="What the key may do.",
)
@click.option("--expires", metavar="DURATION", help="Lifetime, e.g. 90d (default: never).")
@json_option
def create_command(
    database_url: str | None, name: str, scope: str, expires: str | None, as_json: bool
) -> None:
    """Create key NAME and print its secret — once: only a hash is stored.

    \b
    Example:
      swarm-director keys create agent-7 --scope write --expires 90d
    """
    lifetime = parse_duration(expires) if expires is not None else None
    with opened(database_url) as (database, _), database.transaction() as session:
        created = key_store.create_key(session, name, ApiScope(scope), expires_in=lifetime)
        row = _row(created.key, utcnow())
    if as_json:
        emit_json({**row, "token": created.token})
        return
    until = f", expires {row['expires_at'][:16]}Z" if row["expires_at"] else ", never expires"
    click.echo(f"Created API key {name!r} (scope {scope}{until}).")
    click.echo(created.token)
    click.echo("Store it now: it is not shown again.", err=True)


@keys.command("list")
@database_option
@json_option
def list_command(database_url: str | None, as_json: bool) -> None:
    """List every key with its scope and status (never a secret).

    \b
    Example:
      swarm-director keys list --json | jq '.[] | select(.status == "active") | .name'
    """
    now = utcnow()
    with opened(database_url) as (database, _), database.read() as session:
        rows = [_row(key, now) for key in key_store.list_keys(session)]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("No API keys.")
        return
    click.echo(f"{'NAME':<20} {'SCOPE':<6} {'STATUS':<8} {'CREATED':<17} {'LAST USED':<17} EXPIRES")
    for r in rows:
        click.echo(
            f"{r['name']:<20} {r['scope']:<6} {r['status']:<8} {_short(r['created_at']):<17} "
            f"{_short(r['last_used_at']):<17} {_short(r['expires_at'])}"
        )


def _short(value: str | None) -> str:
    return value[:16].replace("T", " ") if value else "-"


@keys.command("revoke")
@database_option
@click.argument("name")
@json_option
def revoke_command(database_url: str | None, name: str, as_json: bool) -> None:
    """Revoke key NAME at once: its requests get 401 from now on (the row stays, for the
    audit trail).

    \b
    Example:
      swarm-director keys revoke agent-7
    """
    with opened(database_url) as (database, _), database.transaction() as session:
        row = _row(key_store.revoke_key(session, name), utcnow())
    if as_json:
        emit_json(row)
        return
    click.echo(f"Revoked API key {name!r} ({row['scope']}).")
