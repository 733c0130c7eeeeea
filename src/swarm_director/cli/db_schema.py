"""Schema commands: init, upgrade, downgrade, current, history, revision, reset, status,
validate, export."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from swarm_director.cli.common import (
    database_option,
    emit_json,
    json_option,
    settings_for,
    yes_option,
)
from swarm_director.cli.main import db
from swarm_director.cli.output import rows_text
from swarm_director.db import Database
from swarm_director.db.engine import create_engine_from_settings
from swarm_director.db.provision import create_database, database_exists, drop_all_tables
from swarm_director.errors import SchemaError
from swarm_director.migrations import migrate
from swarm_director.migrations.revision import REVIEW_REMINDER, write_revision
from swarm_director.models import MaintenanceOperation
from swarm_director.ops import audit
from swarm_director.ops.checks.schema_drift import compare_schema
from swarm_director.ops.dbinfo import database_bytes, estimated_row_counts, reader, row_counts
from swarm_director.ops.schema_export import export_schema
from swarm_director.redact import masked_url

#: The schema revisions before and after a migration (None: an empty database).
Revisions = tuple[str | None, str | None]


@contextmanager
def existing_database(database_url: str | None) -> Iterator[Database]:
    """The configured database, its pool closed afterwards; a one-line error if it has not
    been created yet."""
    settings = settings_for(database_url)
    url = settings.resolved_url()
    if not database_exists(url):
        raise SchemaError(
            f"database {masked_url(url)} does not exist; run `swarm-director db init` first"
        )
    database = Database(create_engine_from_settings(settings))
    try:
        yield database
    finally:
        database.dispose()


def _migrated(database: Database, command: str, step: Callable[[], None]) -> Revisions:
    """Runs ``step`` (an upgrade or a downgrade) recorded in the audit trail as ``command``;
    the revisions before and after."""
    with audit.record(database.engine, MaintenanceOperation.MIGRATE) as details:
        before = migrate.current_revision(database.engine)
        step()
        after = migrate.current_revision(database.engine)
        details.update(command=command, from_revision=before, to_revision=after)
    return before, after


@db.command("init")
@database_option
def init_cmd(database_url: str | None) -> None:
    """Create the database if needed and upgrade it to the latest schema. Idempotent.

    \b
    Example:
      swarm-director db init --database-url postgresql://postgres@127.0.0.1/swarm
    """
    settings = settings_for(database_url)
    url = settings.resolved_url()
    created = create_database(url)
    database = Database(create_engine_from_settings(settings))
    try:
        before, after = _migrated(database, "init", lambda: migrate.upgrade(database.engine))
    finally:
        database.dispose()
    verb = "Created" if created else "Found"
    click.echo(f"{verb} database {masked_url(url)}.")
    if before == after:
        click.echo(f"Schema already at head ({after}).")
    else:
        click.echo(f"Upgraded schema from {before or 'empty'} to {after}.")


@db.command("upgrade")
@click.argument("revision", default="head")
@database_option
def upgrade_cmd(revision: str, database_url: str | None) -> None:
    """Upgrade the schema to REVISION (default: head).

    \b
    Example:
      swarm-director db upgrade            # to the latest revision
      swarm-director db upgrade 002_add_agent_hierarchy
    """
    with existing_database(database_url) as database:
        before, after = _migrated(
            database, "upgrade", lambda: migrate.upgrade(database.engine, revision)
        )
    click.echo(f"Schema upgraded from {before or 'empty'} to {after}.")


@db.command("downgrade")
@click.argument("revision", default="-1")
@database_option
@yes_option
def downgrade_cmd(revision: str, database_url: str | None, yes: bool) -> None:
    """Downgrade the schema to REVISION (default: one step back; `base` removes everything).

    A downgrade drops the tables and columns later revisions added, with their data.

    \b
    Example:
      swarm-director db downgrade 002_add_agent_hierarchy --yes
    """
    with existing_database(database_url) as database:
        if not yes:
            click.confirm(
                f"Downgrade {database.masked_url} from "
                f"{migrate.current_revision(database.engine)} to {revision}? "
                "Data in dropped tables and columns is lost.",
                abort=True,
            )
        before, after = _migrated(
            database, "downgrade", lambda: migrate.downgrade(database.engine, revision)
        )
    click.echo(f"Schema downgraded from {before} to {after or 'base (empty)'}.")


@db.command("current")
@database_option
@json_option
def current_cmd(database_url: str | None, as_json: bool) -> None:
    """Show the database's schema revision and whether it is at head.

    \b
    Example:
      swarm-director db current --json
    """
    with existing_database(database_url) as database:
        current = migrate.current_revision(database.engine)
    head = migrate.head_revision()
    if as_json:
        emit_json({"current": current, "head": head, "at_head": current == head})
        return
    state = "at head" if current == head else f"head is {head}"
    click.echo(f"{current or 'empty (no revision)'} ({state})")


@db.command("history")
@json_option
def history_cmd(as_json: bool) -> None:
    """List the migration history, oldest first.

    \b
    Example:
      swarm-director db history
    """
    revisions = migrate.history()
    if as_json:
        emit_json([r._asdict() if hasattr(r, "_asdict") else vars(r) for r in revisions])
        return
    for rev in revisions:
        click.echo(f"{rev.down_revision or 'base'} -> {rev.revision}: {rev.doc}")


@db.command("revision")
@click.option("-m", "--message", required=True, help="What the revision changes; names the file.")
@click.option(
    "--empty",
    is_flag=True,
    help="Write empty upgrade()/downgrade() to fill in by hand (data migrations, renames).",
)
@click.option(
    "--migrations-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=migrate.MIGRATIONS_DIR,
    show_default="the package's migrations folder",
    help="Migrations folder (env.py and versions/) to add the revision to.",
)
def revision_cmd(message: str, empty: bool, migrations_dir: Path) -> None:
    """Write the next revision, autogenerated from the models.

    The models are compared with a scratch SQLite database upgraded to head (no live database
    is read). The file is versions/NNN_snake_case_message.py, NNN one more than the head's.
    See docs/development.md for the whole workflow.

    \b
    Example:
      swarm-director db revision -m "add agent nickname"
      swarm-director db revision -m "backfill task priorities" --empty
    """
    if not message.strip():
        raise click.UsageError("the message must not be empty (-m 'add agent nickname')")
    new = write_revision(message, migrations_dir, autogenerate=not empty)
    click.echo(f"Wrote {new.path} (revision {new.revision}, after {new.down_revision}).")
    if not new.formatted:
        click.echo("ruff is not installed: run `ruff format` on it before committing.")
    click.echo(REVIEW_REMINDER)
    click.echo("Then test it on both dialects: pytest tests/migrations tests/test_migrations.py")


@db.command("reset")
@database_option
@yes_option
def reset_cmd(database_url: str | None, yes: bool) -> None:
    """Drop every table and re-create the schema at head. Destroys all data.

    \b
    Example:
      swarm-director db reset --yes
    """
    with existing_database(database_url) as database:
        if not yes:
            click.confirm(f"Drop ALL data in {database.masked_url} and re-create it?", abort=True)
        with audit.record(database.engine, MaintenanceOperation.RESET) as details:
            dropped = drop_all_tables(database.engine.url)
            migrate.upgrade(database.engine, "head")
            details["dropped_tables"] = dropped
    click.echo(f"Dropped {len(dropped)} tables; schema re-created at {migrate.head_revision()}.")


def _status(database: Database, exact: bool) -> dict[str, Any]:
    current = migrate.current_revision(database.engine)
    with reader(database.engine).connect() as conn:
        if exact:
            counts, estimated = row_counts(conn), False
        else:
            estimates = estimated_row_counts(conn)
            counts, estimated = {name: c.rows for name, c in estimates.items()}, True
    return {
        "url": database.masked_url,
        "dialect": database.dialect,
        "revision": current,
        "head": migrate.head_revision(),
        "at_head": current == migrate.head_revision(),
        "pending": migrate.pending_revisions(database.engine),
        "rows": counts,
        "rows_estimated": estimated,
        "size_bytes": database_bytes(database.engine),
    }


@db.command("status")
@database_option
@click.option("--exact", is_flag=True, help="Count the rows (scans every table).")
@json_option
def status_cmd(database_url: str | None, exact: bool, as_json: bool) -> None:
    """Show the URL (password masked), dialect, revision vs head, rows per table and size.

    Rows are the engine's estimates (free on any size of table) unless --exact is given.

    \b
    Example:
      swarm-director db status
      swarm-director db status --exact --json
    """
    with existing_database(database_url) as database:
        status = _status(database, exact)
    if as_json:
        emit_json(status)
        return
    click.echo(f"Database:  {status['url']} ({status['dialect']})")
    click.echo(f"Revision:  {status['revision'] or 'empty'} (head: {status['head']})")
    pending = status["pending"]
    click.echo(
        f"Pending:   {', '.join(pending)} — run `swarm-director db upgrade`"
        if pending
        else "Pending:   none"
    )
    click.echo(f"Size:      {status['size_bytes']:,} bytes")
    click.echo("Rows (estimates; --exact counts):" if status["rows_estimated"] else "Rows:")
    for table, count in status["rows"].items():
        click.echo(f"  {table:<28}{rows_text(count, status['rows_estimated']):>28}")


@db.command("validate-schema")
@database_option
@json_option
def validate_schema_cmd(database_url: str | None, as_json: bool) -> None:
    """Compare the live schema with the models; exit 1 on any drift.

    \b
    Example:
      swarm-director db validate-schema --json
    """
    with existing_database(database_url) as database:
        problems = compare_schema(database.engine)
    if as_json:
        emit_json({"ok": not problems, "differences": problems})
    elif problems:
        click.echo(f"Schema drift in {database.masked_url}:")
        for problem in problems:
            click.echo(f"  - {problem}")
    else:
        click.echo("Schema matches the models.")
    if problems:
        raise SystemExit(1)


@db.command("export-schema")
@click.option(
    "--docs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("docs"),
    show_default=True,
    help="Folder to write schema.md and schema/<dialect>.sql into.",
)
def export_schema_cmd(docs_dir: Path) -> None:
    """Write the schema as SQL for SQLite and PostgreSQL and docs/schema.md (Mermaid ER).

    \b
    Example:
      swarm-director db export-schema --docs-dir docs
    """
    for path in export_schema(docs_dir):
        click.echo(f"Wrote {path}")
