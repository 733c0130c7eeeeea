"""Backup commands: backup, backups, verify, restore, backup-key. Each is a thin layer over
:mod:`swarm_director.ops`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from swarm_director.cli.common import (
    backup_identities,
    database_option,
    emit_json,
    identity_option,
    is_interactive,
    json_option,
    opened,
    yes_option,
)
from swarm_director.cli.main import db
from swarm_director.cli.output import human_bytes, progress_bars
from swarm_director.db.base import utcnow
from swarm_director.ops.backup.create import create_backup, list_backups
from swarm_director.ops.backup.encryption import backup_key, backup_recipients
from swarm_director.ops.backup.restore import restore_backup
from swarm_director.ops.backup.verify import verify_backup
from swarm_director.ops.crypto import age
from swarm_director.ops.crypto.sdbkenc1 import KEY_SETTING, new_key
from swarm_director.ops.errors import CorruptBackupError


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

    Encrypted in the age format to SWARM_BACKUP_RECIPIENTS when set (no secret needed to
    write a backup), else with the legacy SWARM_BACKUP_KEY when set. With
    --keep-last/--keep-days, older backups of the same database are pruned afterwards (a backup
    survives if either rule keeps it).

    \b
    Example:
      swarm-director db backup --gzip --keep-last 7 --keep-days 30
    """
    with opened(database_url) as (database, settings):
        recipients = backup_recipients(settings)
        key = None if recipients else backup_key(settings)
        with progress_bars(not as_json) as reporter:
            result = create_backup(
                database.engine,
                directory or settings.resolved_backup_dir(),
                compress=compress,
                key=key,
                recipients=recipients,
                keep_last=keep_last,
                keep_days=keep_days,
                reporter=reporter,
            )
        if as_json:
            emit_json(result.as_dict())
            return
        m = result.manifest
        extras = ", ".join(
            x for x in ("gzip" if m.compression else "", _encryption_words(m.encryption)) if x
        )
        click.echo(
            f"Backed up {database.masked_url} ({m.total_rows} rows, revision "
            f"{m.schema_revision or 'none'}) in {m.seconds:.2f} s: {human_bytes(m.bytes)}"
            + (f", {extras}" if extras else "")
        )
        click.echo(str(result.path))
        for pruned in result.pruned:
            click.echo(f"Pruned {pruned}")
        for leftover in result.removed_leftovers:
            click.echo(f"Removed {leftover} (left by a backup that was killed)")


def _encryption_words(scheme: str | None) -> str:
    if scheme is None:
        return ""
    return "age-encrypted" if scheme == age.SCHEME else "encrypted (legacy key)"


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
                f for f in (m.kind, "gzip" if m.compression else "", _flag(m.encryption)) if f
            )
            line = (
                f"  {entry.path.name}  {m.created_at[:19]}Z  {human_bytes(m.bytes):>10}  "
                f"{m.total_rows:>9} rows  rev {m.schema_revision or 'none'}  {flags}"
            )
            if entry.problem:
                line += f"  UNUSABLE: {entry.problem}"
            click.echo(line)


def _flag(scheme: str | None) -> str:
    return "" if scheme is None else "age" if scheme == age.SCHEME else "enc"


@db.command("verify")
@database_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@identity_option
@json_option
def verify_command(
    database_url: str | None, file: Path, identity_file: Path | None, as_json: bool
) -> None:
    """Restore FILE into a temporary database, run db check on it, compare with the manifest.

    Exits 1 naming the first mismatch. A PostgreSQL backup is staged on the server of
    --database-url (in a throwaway database). An age backup opens with --identity (else
    SWARM_BACKUP_IDENTITY), a legacy encrypted one with SWARM_BACKUP_KEY.

    \b
    Example:
      swarm-director db verify backups/swarm_director_dev-20260101T020000_000000Z.sqlite3.age \\
          --identity /root/backup-identity.txt
    """
    with opened(database_url) as (database, settings):
        identities = backup_identities(settings, identity_file)
        with progress_bars(not as_json) as reporter:
            try:
                report = verify_backup(
                    file,
                    target=database.engine.url,
                    key=backup_key(settings),
                    identities=identities,
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
@identity_option
@yes_option
@json_option
def restore_command(
    database_url: str | None,
    file: Path,
    directory: Path | None,
    identity_file: Path | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Replace the database with FILE: verify, safety backup, then one atomic swap.

    A backup that fails verification is refused and nothing changes. The audit trail keeps
    every event recorded after the backup was taken, then records the restore.

    \b
    Example:
      swarm-director db restore backups/swarm_director_dev-20260101T020000_000000Z.sqlite3 -y
    """
    with opened(database_url) as (database, settings):
        identities = backup_identities(settings, identity_file)
        recipients = backup_recipients(settings)
        if not yes:
            click.confirm(
                f"Replace every row of {database.masked_url} with {file.name}?",
                abort=True,
            )
        with progress_bars(not as_json) as reporter:
            report = restore_backup(
                database.engine,
                file,
                backup_dir=directory or settings.resolved_backup_dir(),
                key=backup_key(settings),
                identities=identities,
                recipients=recipients,
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
            f"Restored {database.masked_url} from {file.name} "
            f"({sum(report.verify.row_counts.values())} rows{upgraded}) in {report.seconds:.2f} s."
        )
        click.echo(f"Safety backup of the previous state: {report.safety_backup.path}")


@db.command("backup-key")
@click.option(
    "--legacy",
    is_flag=True,
    help="Print a symmetric SWARM_BACKUP_KEY instead (the format before age).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the identity to this new file (mode 0600) instead of printing it.",
)
def backup_key_command(legacy: bool, output: Path | None) -> None:
    """Make a new age identity and print it with its recipient (the public key).

    Put the recipient in SWARM_BACKUP_RECIPIENTS on the server that writes backups; keep the
    identity (the secret line) off that server, in SWARM_BACKUP_IDENTITY only where backups
    are verified or restored. Without it, no restore. The output is an age identity file:
    `age -d -i FILE backup.age` opens a backup with it.

    \b
    Example:
      swarm-director db backup-key -o /root/swarm-backup-identity.txt
      export SWARM_BACKUP_RECIPIENTS=age1...   # the "public key" line it printed
    """
    if legacy:
        click.echo(new_key())
        if is_interactive():
            click.echo(f"Set it as {KEY_SETTING} for backup, verify and restore.", err=True)
        return
    identity, recipient = age.new_identity()
    text = f"# created: {utcnow():%Y-%m-%dT%H:%M:%SZ}\n# public key: {recipient}\n{identity}\n"
    if output is None:
        click.echo(text, nl=False)
        return
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text)
    click.echo(f"Wrote the identity to {output} (keep it secret, keep a copy).")
    click.echo(f"Public key: {recipient}")
