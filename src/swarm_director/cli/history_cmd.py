"""``swarm-director history``: what changed, when, and who changed it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from swarm_director.cli.common import database_option, emit_json, json_option, opened
from swarm_director.cli.main import cli
from swarm_director.db import utcnow
from swarm_director.durations import parse_duration
from swarm_director.schemas.history import HistoryOut
from swarm_director.store import history
from swarm_director.store.history import ENTITY_NAMES


def format_change(row: Any) -> str:
    """One line: time, actor, action, entity and id, then each field's before → after."""
    stamp = row.at.isoformat(timespec="seconds").replace("+00:00", "Z")
    fields = ", ".join(
        f"{name}: {json.dumps(before)} → {json.dumps(after)}"
        if row.action not in ("create", "delete")
        else name
        for name, (before, after) in sorted(row.changes.items())
    )
    return f"{stamp} {row.actor} {row.action} {row.entity} {row.entity_id}  {fields}"


@cli.command("history")
@click.option("--task", "task_id", type=click.IntRange(1), help="Only this task's changes.")
@click.option("--entity", type=click.Choice(sorted(ENTITY_NAMES)), help="Only this kind of row.")
@click.option("--id", "entity_id", type=click.IntRange(1), help="Only this row (with --entity).")
@click.option("--actor", help="Only changes by this actor (e.g. a key's name).")
@click.option("--action", help="Only this action (create, update, delete, claim, ...).")
@click.option("--since", help="Only changes younger than this (e.g. 1h, 7d).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@database_option
@json_option
def history_cmd(
    task_id: int | None,
    entity: str | None,
    entity_id: int | None,
    actor: str | None,
    action: str | None,
    since: str | None,
    limit: int,
    database_url: str | None,
    as_json: bool,
) -> None:
    """List recorded changes, oldest first: the newest LIMIT matching the filters.

    \b
    Examples:
      swarm-director history --task 42
      swarm-director history --since 1h --actor agent-7
      swarm-director history --entity api_key --json
    """
    if task_id is not None:
        if entity not in (None, "task") or entity_id is not None:
            raise click.UsageError("--task cannot be combined with --entity or --id")
        entity, entity_id = "task", task_id
    elif entity_id is not None and entity is None:
        raise click.UsageError("--id needs --entity")
    start: datetime | None = utcnow() - parse_duration(since) if since else None
    with opened(database_url) as (db, _settings), db.statement_reads() as conn:
        wanted = {"entity": entity, "entity_id": entity_id, "actor": actor, "action": action}
        page = history.list_history(conn, {**wanted, "since": start}, order="desc", limit=limit)
    rows = list(reversed(page.items))
    if as_json:
        emit_json([HistoryOut.model_validate(r).model_dump(mode="json") for r in rows])
        return
    if not rows:
        click.echo("no changes recorded that match")
    for row in rows:
        click.echo(format_change(row))
