"""Operations commands: check, backup, backups, verify, restore, cleanup-logs, optimize,
stats, maintain. Each is a thin layer over :mod:`swarm_director.ops`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import click

from swarm_director.cli.common import (
    database_option,
    emit_json,
    is_interactive,
    json_option,
    settings_for,
    yes_option,
)
from swarm_director.cli.main import db
from swarm_director.db import Database
from swarm_director.db.engine import masked_url
from swarm_director.db.partitions import DEFAULT_MONTHS_AHEAD
from swarm_director.errors import SwarmError
from swarm_director.models import TaskStatus
from swarm_director.ops.artifact import Reporter
from swarm_director.ops.backup import create_backup, default_backup_dir, list_backups
from swarm_director.ops.check import check_database
from swarm_director.ops.crypto import KEY_ENV, key_from_env, new_key
from swarm_director.ops.errors import CorruptBackupError
from swarm_director.ops.maintain import MaintenancePolicy, run_maintenance
from swarm_director.ops.optimize import optimize
from swarm_director.ops.restore import restore_backup
from swarm_director.ops.retention import (
    DEFAULT_BATCH,
    RetentionPolicy,
    cleanup_logs,
    parse_duration,
    parse_keep,
)
from swarm_director.ops.stats import collect_stats
from swarm_director.ops.timing import default_directory
from swarm_director.ops.verify import verify_backup


class ProblemsFound(SwarmError):
    """A command ran and found something wrong (exit status 1)."""


@contextmanager
def progress_bars(enabled: bool) -> Iterator[Reporter | None]:
    """A reporter drawing one click progress bar per stage, for stages that last longer than
    a second; None (no output at all) when not on a terminal or when ``enabled`` is False."""
    if not enabled or not is_interactive():
        yield None
        return
    with ExitStack() as stack:
        state: dict[str, Any] = {"stage": None, "bar": None, "done": 0, "since": 0.0}

        def report(stage: str, done: int, total: int) -> None:
            if state["stage"] != stage:
                if state["bar"] is not None:
                    state["bar"].render_finish()
                state.update(stage=stage, bar=None, done=0, since=time.monotonic())
            if state["bar"] is None:
                if time.monotonic() - state["since"] < 1.0 or done >= total:
                    return  # quick stages stay quiet
                state["bar"] = stack.enter_context(
                    click.progressbar(length=max(total, 1), label=f"{stage:>9}")
                )
            state["bar"].update(max(0, done - state["done"]))
            state["done"] = done

        yield report


@contextmanager
def _open(database_url: str | None) -> Iterator[tuple[Database, Path]]:
    """The database and the default backup folder; the pool is closed afterwards."""
    settings = settings_for(database_url)
    database = Database.from_settings(settings)
    try:
        yield database, default_backup_dir(settings)
    finally:
        database.dispose()


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


@db.command("check")
@database_option
@json_option
def check_command(database_url: str | None, as_json: bool) -> None:
    """Check engine integrity and every domain rule; list each problem.

    Exits 1 when any problem is found (see docs/operations.md for what each rule means).

    \b
    Example:
      swarm-director db check
      swarm-director db check --json | jq '.problems[] | .rule'
    """
    with _open(database_url) as (database, _):
        report = check_database(database.engine)
        if as_json:
            emit_json(report.as_dict())
        else:
            where = masked_url(database.engine.url)
            click.echo(
                f"Checked {where}: {len(report.rules)} rules in {report.seconds:.2f} s, "
                f"{report.problem_count} problem(s)."
            )
            for problem in report.problems:
                click.echo(f"  {problem}")
            for rule, extra in report.omitted.items():
                click.echo(f"  ... and {extra} more [{rule}] problem(s)")
        if not report.ok:
            raise ProblemsFound(f"db check found {report.problem_count} problem(s)")


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
    with _open(database_url) as (database, default_dir):
        key = key_from_env()
        with progress_bars(not as_json) as reporter:
            result = create_backup(
                database.engine,
                directory or default_dir,
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
            f"{m.schema_revision or 'none'}) in {m.seconds:.2f} s: {_human(m.bytes)}"
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
    with _open(database_url) as (_, default_dir):
        folder = directory or default_dir
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
                f"  {entry.path.name}  {m.created_at[:19]}Z  {_human(m.bytes):>10}  "
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
    with _open(database_url) as (database, _):
        with progress_bars(not as_json) as reporter:
            try:
                report = verify_backup(
                    file,
                    target=database.engine.url,
                    key=key_from_env(),
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
    with _open(database_url) as (database, default_dir):
        if not yes:
            click.confirm(
                f"Replace every row of {masked_url(database.engine.url)} with {file.name}?",
                abort=True,
            )
        with progress_bars(not as_json) as reporter:
            report = restore_backup(
                database.engine,
                file,
                backup_dir=directory or default_dir,
                key=key_from_env(),
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
        click.echo(f"Set it as {KEY_ENV} for backup, verify and restore.", err=True)


@db.command("cleanup-logs")
@database_option
@click.option("--older-than", default="30d", show_default=True, help="Delete logs older than this.")
@click.option(
    "--keep", "keep", metavar="LEVEL=AGE,...", help="Per-level retention, e.g. error=90d."
)
@click.option(
    "--task-status",
    "task_status",
    multiple=True,
    type=click.Choice([s.value for s in TaskStatus]),
    help="Only logs of tasks in this status (repeatable).",
)
@click.option(
    "--archive",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the rows to this .jsonl.gz (fsynced) before deleting them.",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.option("--batch-size", default=DEFAULT_BATCH, show_default=True, type=click.IntRange(1))
@yes_option
@json_option
def cleanup_logs_command(
    database_url: str | None,
    older_than: str,
    keep: str | None,
    task_status: tuple[str, ...],
    archive: Path | None,
    dry_run: bool,
    batch_size: int,
    yes: bool,
    as_json: bool,
) -> None:
    """Delete old agent logs in short batches, optionally archiving them first.

    Writers are blocked at most one batch at a time. Exits non-zero on any failure, saying how
    many rows were deleted before it.

    \b
    Example:
      swarm-director db cleanup-logs --older-than 30d --keep error=90d,warning=60d \\
          --task-status completed --archive logs-2026-01.jsonl.gz --yes
    """
    policy = RetentionPolicy(
        older_than=parse_duration(older_than),
        keep=parse_keep(keep),
        task_statuses=[TaskStatus(s) for s in task_status] or None,
    )
    with _open(database_url) as (database, _):
        if not dry_run and not yes:
            preview = cleanup_logs(database.engine, policy, dry_run=True)
            if preview.total_matched == 0:
                click.echo("No logs match; nothing to delete.")
                return
            click.confirm(
                f"Delete {preview.total_matched} logs from {masked_url(database.engine.url)}"
                + (f" (archived to {archive} first)?" if archive else " without an archive?"),
                abort=True,
            )
        with progress_bars(not as_json) as reporter:
            report = cleanup_logs(
                database.engine,
                policy,
                archive=archive,
                dry_run=dry_run,
                batch_size=batch_size,
                reporter=reporter,
            )
    if as_json:
        emit_json(report.as_dict())
        return
    levels = ", ".join(f"{n} {lvl}" for lvl, n in sorted(report.matched.items())) or "none"
    whole = f"dropping whole months: {', '.join(report.partitions)}" if report.partitions else ""
    if dry_run:
        click.echo(
            f"Would delete {report.total_matched} logs ({levels})"
            + (f", {whole}." if whole else ".")
        )
        return
    click.echo(
        f"Deleted {report.deleted} logs ({levels}) in {report.batches} batches "
        f"(longest {report.longest_batch_s * 1000:.0f} ms) in {report.seconds:.2f} s; "
        f"freed {_human(report.bytes_freed)}."
    )
    if report.partitions:
        click.echo(
            f"{report.dropped_rows} of them went with whole months, "
            f"{', '.join(report.partitions)} (dropped in {report.drop_seconds:.3f} s)."
        )
    if report.archive:
        click.echo(f"Archived {report.archived} rows to {report.archive}")
    if report.vanished:
        click.echo(f"{report.vanished} archived rows had already been deleted by someone else.")


@db.command("optimize")
@database_option
@json_option
def optimize_command(database_url: str | None, as_json: bool) -> None:
    """Refresh statistics and reclaim space (SQLite ANALYZE, VACUUM, checkpoint; PostgreSQL
    VACUUM (ANALYZE)). On SQLite VACUUM holds the write lock while it runs.

    \b
    Example:
      swarm-director db optimize
    """
    with _open(database_url) as (database, _):
        report = optimize(database.engine)
    if as_json:
        emit_json(report.as_dict())
        return
    click.echo(
        f"Optimized {masked_url(database.engine.url)} in {report.seconds:.2f} s: "
        f"{_human(report.bytes_before)} -> {_human(report.bytes_after)} "
        f"({'; '.join(report.steps)})."
    )


@db.command("stats")
@database_option
@json_option
def stats_command(database_url: str | None, as_json: bool) -> None:
    """Rows and bytes per table and index, WAL and free list, last maintenance, slowest
    statements, and suggestions.

    \b
    Example:
      swarm-director db stats
      swarm-director db stats --json | jq .suggestions
    """
    settings = settings_for(database_url)
    with _open(database_url) as (database, _):
        stats = collect_stats(database.engine, timings_dir=default_directory(settings.data_dir))
    if as_json:
        emit_json(stats.as_dict())
        return
    click.echo(f"Database  {stats.url} ({stats.dialect})")
    click.echo(f"Revision  {stats.revision or 'none'} (head {stats.head or 'unknown'})")
    size = f"Size      {_human(stats.database_bytes)}"
    if stats.wal_bytes is not None:
        size += f", WAL {_human(stats.wal_bytes)}"
    if stats.free_bytes is not None:
        size += f", free list {_human(stats.free_bytes)}"
    click.echo(size)
    click.echo("Tables:")
    for table in stats.tables:
        click.echo(f"  {table['name']:<26} {table['rows']:>10} rows {_human(table['bytes']):>10}")
        for index, nbytes in sorted(table["indexes"].items()):
            click.echo(f"    {index:<50} {_human(nbytes):>10}")
    click.echo("Last successful:")
    for op, when in stats.last.items():
        click.echo(f"  {op:<9} {when[:19] + 'Z' if when else 'never'}")
    if stats.slow_statements:
        click.echo("Slowest statements (worst ms, runs):")
        for slow in stats.slow_statements:
            click.echo(f"  {slow['max_ms']:>9.1f} {slow['count']:>7}  {slow['shape'][:90]}")
    click.echo("Suggestions:" if stats.suggestions else "Suggestions: none")
    for suggestion in stats.suggestions:
        click.echo(f"  - {suggestion}")


@db.command("maintain")
@database_option
@click.option(
    "--dir",
    "directory",
    envvar="SWARM_BACKUP_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Backup folder [env SWARM_BACKUP_DIR].",
)
@click.option(
    "--keep-last", envvar="SWARM_KEEP_LAST", default=7, show_default=True, type=click.IntRange(1)
)
@click.option("--keep-days", envvar="SWARM_KEEP_DAYS", type=click.FloatRange(0, min_open=True))
@click.option("--older-than", envvar="SWARM_LOG_RETENTION", default="30d", show_default=True)
@click.option("--keep", "keep", envvar="SWARM_LOG_KEEP", default="error=90d", show_default=True)
@click.option(
    "--archive-dir",
    envvar="SWARM_LOG_ARCHIVE_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Archive deleted logs here (jsonl.gz per run) [env SWARM_LOG_ARCHIVE_DIR].",
)
@click.option(
    "--idempotency-ttl",
    envvar="SWARM_IDEMPOTENCY_TTL",
    default="7d",
    show_default=True,
    help="Delete idempotency keys older than this; a batch retried later is stored again "
    "[env SWARM_IDEMPOTENCY_TTL].",
)
@click.option(
    "--partitions-ahead",
    default=DEFAULT_MONTHS_AHEAD,
    show_default=True,
    type=click.IntRange(0, 120),
    help="PostgreSQL: monthly log partitions to have ready beyond the current month.",
)
@click.option("--no-cleanup", is_flag=True, help="Skip log retention.")
@click.option("--no-key-expiry", is_flag=True, help="Keep every idempotency key.")
@click.option("--no-optimize", is_flag=True, help="Skip optimize.")
@json_option
def maintain_command(
    database_url: str | None,
    directory: Path | None,
    keep_last: int,
    keep_days: float | None,
    older_than: str,
    keep: str,
    archive_dir: Path | None,
    idempotency_ttl: str,
    partitions_ahead: int,
    no_cleanup: bool,
    no_key_expiry: bool,
    no_optimize: bool,
    as_json: bool,
) -> None:
    """Run the maintenance policy once: log partitions ahead (PostgreSQL), backup + prune,
    log retention, expiry of old idempotency keys, optimize.

    Meant for cron or a systemd timer; a second run while one is active exits at once. Exits
    1 if any step failed. Options can also come from the environment (see --help).

    \b
    Example (crontab, daily at 03:10):
      10 3 * * * swarm-director db maintain --dir /var/backups/swarm --archive-dir /var/log/swarm
    """
    policy_retention = None
    if not no_cleanup:
        policy_retention = RetentionPolicy(
            older_than=parse_duration(older_than), keep=parse_keep(keep)
        )
    key_ttl = None if no_key_expiry else parse_duration(idempotency_ttl)
    with _open(database_url) as (database, default_dir):
        policy = MaintenancePolicy(
            backup_dir=directory or default_dir,
            keep_last=keep_last,
            keep_days=keep_days,
            key=key_from_env(),
            retention=policy_retention,
            archive_dir=archive_dir,
            idempotency_ttl=key_ttl,
            optimize=not no_optimize,
            partitions_ahead=partitions_ahead,
        )
        report = run_maintenance(database.engine, policy)
    if as_json:
        emit_json(report.as_dict())
    else:
        for step in report.steps:
            click.echo(f"{step.name:<9} {'ok' if step.ok else 'FAILED'}  {step.summary}")
        click.echo(f"Maintenance {'done' if report.ok else 'FAILED'} in {report.seconds:.2f} s.")
    if not report.ok:
        failed = ", ".join(s.name for s in report.steps if not s.ok)
        raise ProblemsFound(f"maintenance step(s) failed: {failed}")
