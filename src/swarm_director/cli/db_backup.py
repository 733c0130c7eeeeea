"""Backup commands: backup, backups, verify, restore, backup-key. Each is a thin layer over
:mod:`swarm_director.ops`."""

from __future__ import annotations

from pathlib import Path

import click

from swarm_director.cli.common import (
    backup_key,
    database_option,
    emit_json,
    is_interactive,
    json_option,
    opened,
    yes_option,
)
from swarm_director.cli.main import db
from swarm_director.cli.output import human_bytes, progress_bars
from swarm_director.ops.backup import create_backup, list_backups
from swarm_director.ops.crypto import KEY_SETTING, new_key
from swarm_director.ops.errors import CorruptBackupError
from swarm_director.ops.restore import restore_backup
from swarm_director.ops.verify import verify_backup
from swarm_director.redact import masked_url


@db.command("backup")
@database_option
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for backups (default: backups/ beside the embedded database, else ./backups).",
)
@click.option("--gzip", "compress", is_flag=True, help="Compress the backup with gzip.")
@click.option("--keep-last", type=click.IntRange(min=1), help="Then keep only the newest N.")
@click.option(
    "--keep-days",
    type=click.FloatRange(min=0, min_open=True),
    help="Then drop backups older than N days.",
)
@json_option
def backup_command(
    database_url: str | None,
    directory: Path | None,
    compress: bool,
    keep_last: int | None,
    keep_days: float | None,
    as_json: bool,
) -> None:
    """Take a consistent online backup (writers keep writing) plus its manifest.

    Encrypted when SWARM_BACKUP_KEY is set. With --keep-last/--keep-days, older backups of the
    same database are pruned afterwards (a backup survives if either rule keeps it).

    \b
    Example:
      swarm-director db backup --gzip --keep-last 7 --keep-days 30
    """
    with opened(database_url) as (database, settings):
        key = backup_key(settings)
        with progress_bars(not as_json) as reporter:
            result = create_backup(
                database.engine,
                directory or settings.resolved_backup_dir(),
                compress=compress,
                key=key,
                keep_last=keep_last,
                keep_days=keep_days,
                reporter=reporter,
            )
        if as_json:
            emit_json(result.as_dict())
            return
        m = result.manifest
        extras = ", ".join(
            x for x in ("gzip" if m.compression else "", "encrypted" if m.encryption else "") if x
        )
        click.echo(
            f"Backed up {masked_url(database.engine.url)} ({m.total_rows} rows, revision "
            f"{m.schema_revision or 'none'}) in {m.seconds:.2f} s: {human_bytes(m.bytes)}"
            + (f", {extras}" if extras else "")
        )
        click.echo(str(result.path))
        for pruned in result.pruned:
            click.echo(f"Pruned {pruned}")
        for leftover in result.removed_leftovers:
            click.echo(f"Removed {leftover} (left by a backup that was killed)")


@db.command("backups")
@database_option
@click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path), help="Backup folder."
)
@json_option
def backups_command(database_url: str | None, directory: Path | None, as_json: bool) -> None:
    """List backups with their manifest data, oldest first; unusable ones say why.

    \b
    Example:
      swarm-director db backups --dir /var/backups/swarm
    """
    with opened(database_url) as (_, settings):
        folder = directory or settings.resolved_backup_dir()
        entries = list_backups(folder)
        if as_json:
            emit_json({"directory": str(folder), "backups": [e.as_dict() for e in entries]})
            return
        if not entries:
            click.echo(f"No backups in {folder}.")
            return
        click.echo(f"Backups in {folder}:")
        for entry in entries:
            m = entry.manifest
            if m is None:
                click.echo(f"  {entry.path.name}  UNUSABLE: {entry.problem}")
                continue
            flags = " ".join(
                f
                for f in (m.kind, "gzip" if m.compression else "", "enc" if m.encryption else "")
                if f
            )
            line = (
                f"  {entry.path.name}  {m.created_at[:19]}Z  {human_bytes(m.bytes):>10}  "
                f"{m.total_rows:>9} rows  rev {m.schema_revision or 'none'}  {flags}"
            )
            if entry.problem:
                line += f"  UNUSABLE: {entry.problem}"
            click.echo(line)


@db.command("verify")
@database_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
def verify_command(database_url: str | None, file: Path, as_json: bool) -> None:
    """Restore FILE into a temporary database, run db check on it, compare with the manifest.

    Exits 1 naming the first mismatch. A PostgreSQL backup is staged on the server of
    --database-url (in a throwaway database).

    \b
    Example:
      swarm-director db verify backups/swarm_director_dev-20260101T020000_000000Z.sqlite3
    """
    with opened(database_url) as (database, settings):
        with progress_bars(not as_json) as reporter:
            try:
                report = verify_backup(
                    file,
                    target=database.engine.url,
                    key=backup_key(settings),
                    reporter=reporter,
                    audit_engine=database.engine,
                )
            except CorruptBackupError as error:
                if as_json:
                    emit_json({"ok": False, "path": str(file), "error": error.message})
                raise
        if as_json:
            emit_json(report.as_dict())
            return
        upgraded = f", upgraded from {report.upgraded_from}" if report.upgraded_from else ""
        click.echo(
            f"{file.name}: OK. Checksum, {len(report.row_counts)} tables "
            f"({sum(report.row_counts.values())} rows) and revision {report.revision or 'none'} "
            f"match the manifest{upgraded}; db check clean ({report.seconds:.2f} s)."
        )


@db.command("restore")
@database_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the safety backup of the current database goes (default: the backup folder).",
)
@yes_option
@json_option
def restore_command(
    database_url: str | None, file: Path, directory: Path | None, yes: bool, as_json: bool
) -> None:
    """Replace the database with FILE: verify, safety backup, then one atomic swap.

    A backup that fails verification is refused and nothing changes.

    \b
    Example:
      swarm-director db restore backups/swarm_director_dev-20260101T020000_000000Z.sqlite3 -y
    """
    with opened(database_url) as (database, settings):
        if not yes:
            click.confirm(
                f"Replace every row of {masked_url(database.engine.url)} with {file.name}?",
                abort=True,
            )
        with progress_bars(not as_json) as reporter:
            report = restore_backup(
                database.engine,
                file,
                backup_dir=directory or settings.resolved_backup_dir(),
                key=backup_key(settings),
                reporter=reporter,
            )
        if as_json:
            emit_json(report.as_dict())
            return
        upgraded = (
            f", upgraded from {report.verify.upgraded_from} to head"
            if report.verify.upgraded_from
            else ""
        )
        click.echo(
            f"Restored {masked_url(database.engine.url)} from {file.name} "
            f"({sum(report.verify.row_counts.values())} rows{upgraded}) in {report.seconds:.2f} s."
        )
        click.echo(f"Safety backup of the previous state: {report.safety_backup.path}")


@db.command("backup-key")
def backup_key_command() -> None:
    """Print a new random key for encrypted backups (keep it safe: without it, no restore).

    \b
    Example:
      export SWARM_BACKUP_KEY="$(swarm-director db backup-key)"
    """
    click.echo(new_key())
    if is_interactive():
        click.echo(f"Set it as {KEY_SETTING} for backup, verify and restore.", err=True)
