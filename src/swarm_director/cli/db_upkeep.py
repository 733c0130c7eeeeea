"""Upkeep commands: check, rebuild-rollups, optimize, stats, cleanup-logs, maintain. Each is a
thin layer over :mod:`swarm_director.ops` (rebuild-rollups over the rollup's model module)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from swarm_director.cli.common import (
    ProblemsFound,
    backup_identities,
    database_option,
    emit_json,
    from_setting,
    identity_option,
    json_option,
    opened,
    yes_option,
)
from swarm_director.cli.main import db
from swarm_director.cli.output import human_bytes, progress_bars, rows_text
from swarm_director.durations import parse_duration
from swarm_director.models import TaskStatus
from swarm_director.models.attempt import rebuild_attempts
from swarm_director.models.attempt_count import rebuild_attempt_counts
from swarm_director.models.attempt_digest import forget_digests
from swarm_director.models.error_group import rebuild_error_groups
from swarm_director.models.rollup import rebuild_log_hours, rebuild_task_hours
from swarm_director.ops.backup.encryption import backup_key, backup_recipients
from swarm_director.ops.checks.db_check import check_database
from swarm_director.ops.maintain import MaintenancePolicy, run_maintenance
from swarm_director.ops.optimize import optimize
from swarm_director.ops.retention.batched_deletes import DEFAULT_BATCH
from swarm_director.ops.retention.logs import cleanup_logs
from swarm_director.ops.retention.policy import RetentionPolicy, parse_keep
from swarm_director.ops.stats.collect import collect_stats


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
    with opened(database_url) as (database, _):
        report = check_database(database.engine)
        if as_json:
            emit_json(report.as_dict())
        else:
            where = database.masked_url
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


@db.command("rebuild-rollups")
@database_option
def rebuild_rollups_command(database_url: str | None) -> None:
    """Count the reports' rollups again (log_volume_hours, error_group_hours,
    task_count_hours) and empty their deltas, derive task_attempts from the history again and
    count them into attempt_count_hours, in one transaction. The durations report's digests
    are dropped: a running server's fold, or db optimize, writes them again.

    For a database whose logs were written by other means than the store (a bulk load with
    sqlite3: this also gives their error logs the pattern the failures report groups by), or
    when db check reports rollup_drift. Writers wait while it runs.

    \b
    Example:
      swarm-director db rebuild-rollups
    """
    with opened(database_url) as (database, _), database.engine.begin() as conn:
        started = time.perf_counter()
        # Error groups first: giving logs their patterns is an UPDATE, which PostgreSQL's log
        # volume trigger sees (net zero); the log volume's rebuild then drops those deltas.
        errors = rebuild_error_groups(conn)
        logs = rebuild_log_hours(conn)
        counts = rebuild_task_hours(conn)
        attempts = rebuild_attempts(conn)
        attempt_counts = rebuild_attempt_counts(conn)  # after the attempts it counts
        forget_digests(conn)
    click.echo(
        f"Rebuilt the rollups of {database.masked_url} in "
        f"{time.perf_counter() - started:.2f} s: log_volume_hours {logs:,} rows, "
        f"error_group_hours {errors:,} rows, "
        f"task_count_hours {counts:,} rows, task_attempts {attempts:,} rows, "
        f"attempt_count_hours {attempt_counts:,} rows; the attempt digests dropped (the "
        "server's fold or db optimize writes them again)."
    )


@db.command("optimize")
@database_option
@json_option
def optimize_command(database_url: str | None, as_json: bool) -> None:
    """Refresh statistics and reclaim space (SQLite ANALYZE, VACUUM, checkpoint; PostgreSQL
    VACUUM (ANALYZE)), after folding the reports' rollups and digesting the attempts of the
    hours that have ended. On SQLite VACUUM holds the write lock while it runs.

    \b
    Example:
      swarm-director db optimize
    """
    with opened(database_url) as (database, _):
        report = optimize(database.engine)
    if as_json:
        emit_json(report.as_dict())
        return
    click.echo(
        f"Optimized {database.masked_url} in {report.seconds:.2f} s: "
        f"{human_bytes(report.bytes_before)} -> {human_bytes(report.bytes_after)} "
        f"({'; '.join(report.steps)})."
    )


@db.command("stats")
@database_option
@click.option(
    "--exact",
    is_flag=True,
    help="Count rows and old logs, and measure SQLite tables (reads every page; slow on "
    "big databases). Without it rows are the engine's estimates.",
)
@json_option
def stats_command(database_url: str | None, exact: bool, as_json: bool) -> None:
    """Rows and bytes per table and index, WAL and free list, last maintenance, slowest
    statements (of every server process of the database), and suggestions.

    Rows are estimates from the engine's statistics unless --exact is given.

    \b
    Example:
      swarm-director db stats
      swarm-director db stats --exact --json | jq .suggestions
    """
    with opened(database_url) as (database, _):
        stats = collect_stats(database.engine, exact=exact, server_statements=True)
    if as_json:
        emit_json(stats.as_dict())
        return
    click.echo(f"Database  {stats.url} ({stats.dialect})")
    click.echo(f"Revision  {stats.revision or 'none'} (head {stats.head or 'unknown'})")
    size = f"Size      {human_bytes(stats.database_bytes)}"
    if stats.wal_bytes is not None:
        size += f", WAL {human_bytes(stats.wal_bytes)}"
    if stats.free_bytes is not None:
        size += f", free list {human_bytes(stats.free_bytes)}"
    click.echo(size)
    click.echo("Tables:" if exact else "Tables (rows are estimates; --exact counts):")
    for table in stats.tables:
        nbytes = "" if table["bytes"] is None else human_bytes(table["bytes"])
        click.echo(
            f"  {table['name']:<26} {rows_text(table['rows'], table['rows_estimated'])}"
            f" {nbytes:>10}"
        )
        for index, size_of in sorted(table["indexes"].items()):
            click.echo(f"    {index:<50} {human_bytes(size_of):>10}")
    click.echo("Last successful:")
    for op, when in stats.last.items():
        click.echo(f"  {op:<9} {when[:19] + 'Z' if when else 'never'}")
    if stats.slow_statements:
        click.echo("Slowest statements, all server processes (worst ms, runs, processes):")
        for slow in stats.slow_statements:
            click.echo(
                f"  {slow['max_ms']:>9.1f} {slow['count']:>7} {len(slow['sources']):>3}  "
                f"{slow['shape'][:90]}"
            )
    else:
        click.echo(
            "Slowest statements: none recorded yet (servers flush every SWARM_TIMINGS_FLUSH)"
        )
    if stats.server_statements:
        click.echo(f"Slowest statements, {stats.server_statements_note} (worst ms, runs):")
        for slow in stats.server_statements:
            click.echo(f"  {slow['max_ms']:>9.1f} {slow['count']:>7}  {slow['shape'][:90]}")
    elif stats.dialect == "postgresql":
        click.echo(f"Server statement statistics: {stats.server_statements_note}.")
    click.echo("Suggestions:" if stats.suggestions else "Suggestions: none")
    for suggestion in stats.suggestions:
        click.echo(f"  - {suggestion}")


@db.command("cleanup-logs")
@database_option
@click.option("--older-than", help=f"Delete logs older than this {from_setting('log_retention')}.")
@click.option(
    "--keep",
    "keep",
    metavar="LEVEL=AGE,...",
    help="Per-level retention, e.g. error=90d,warning=60d; --keep '' keeps no level longer "
    f"{from_setting('log_keep')}.",
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
    help="Write the rows to this .jsonl.gz (fsynced) before deleting them; encrypted to "
    "SWARM_BACKUP_RECIPIENTS when set (then named FILE.age).",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.option("--batch-size", default=DEFAULT_BATCH, show_default=True, type=click.IntRange(1))
@yes_option
@json_option
def cleanup_logs_command(
    database_url: str | None,
    older_than: str | None,
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
    many rows were deleted before it. --older-than and --keep default to their settings, as in
    db maintain (see `swarm-director config show`); an option wins over the setting.

    \b
    Example:
      swarm-director db cleanup-logs --older-than 30d --keep error=90d,warning=60d \\
          --task-status completed --archive logs-2026-01.jsonl.gz --yes
    """
    # Options are checked before the database is opened; the settings fill in what is not given.
    older = parse_duration(older_than) if older_than else None
    keep_rules = parse_keep(keep) if keep is not None else None
    with opened(database_url) as (database, settings):
        policy = RetentionPolicy(
            older_than=settings.log_retention if older is None else older,
            keep=parse_keep(settings.log_keep) if keep_rules is None else keep_rules,
            task_statuses=[TaskStatus(s) for s in task_status] or None,
        )
        recipients = backup_recipients(settings)
        if not dry_run and not yes:
            preview = cleanup_logs(database.engine, policy, dry_run=True)
            if preview.total_matched == 0:
                click.echo("No logs match; nothing to delete.")
                return
            click.confirm(
                f"Delete {preview.total_matched} logs from {database.masked_url}"
                + (f" (archived to {archive} first)?" if archive else " without an archive?"),
                abort=True,
            )
        with progress_bars(not as_json) as reporter:
            report = cleanup_logs(
                database.engine,
                policy,
                archive=archive,
                recipients=recipients,
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
        f"freed {human_bytes(report.bytes_freed)}."
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


@db.command("maintain")
@database_option
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Backup folder [default: SWARM_BACKUP_DIR, else the default backup folder].",
)
@click.option(
    "--keep-last",
    type=click.IntRange(1),
    help=f"Keep the newest N backups {from_setting('keep_last')}.",
)
@click.option(
    "--keep-days",
    type=click.FloatRange(0, min_open=True),
    help=f"Also keep backups younger than N days {from_setting('keep_days')}.",
)
@click.option("--older-than", help=f"Delete logs older than this {from_setting('log_retention')}.")
@click.option(
    "--keep",
    "keep",
    metavar="LEVEL=AGE,...",
    help=f"Per-level retention {from_setting('log_keep')}.",
)
@click.option(
    "--archive-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Archive deleted logs here, one .jsonl.gz per run {from_setting('log_archive_dir')}.",
)
@click.option(
    "--idempotency-ttl",
    help="Delete idempotency keys older than this; a batch retried later is stored again "
    f"{from_setting('idempotency_ttl')}.",
)
@click.option(
    "--no-verify",
    is_flag=True,
    help="Do not restore the new backup into a scratch database to verify it.",
)
@identity_option
@click.option(
    "--partitions-ahead",
    type=click.IntRange(0, 120),
    help="PostgreSQL: monthly log partitions to have ready beyond the current month "
    f"{from_setting('partitions_ahead')}.",
)
@click.option(
    "--history-older-than",
    help=f"Delete history rows older than this {from_setting('history_retention')}.",
)
@click.option("--no-cleanup", is_flag=True, help="Skip log retention.")
@click.option("--no-history-cleanup", is_flag=True, help="Keep every history row.")
@click.option("--no-key-expiry", is_flag=True, help="Keep every idempotency key.")
@click.option("--no-optimize", is_flag=True, help="Skip optimize.")
@json_option
def maintain_command(
    database_url: str | None,
    directory: Path | None,
    keep_last: int | None,
    keep_days: float | None,
    older_than: str | None,
    keep: str | None,
    archive_dir: Path | None,
    idempotency_ttl: str | None,
    no_verify: bool,
    identity_file: Path | None,
    partitions_ahead: int | None,
    history_older_than: str | None,
    no_cleanup: bool,
    no_history_cleanup: bool,
    no_key_expiry: bool,
    no_optimize: bool,
    as_json: bool,
) -> None:
    """Run the maintenance policy once: log partitions ahead (PostgreSQL), backup + prune,
    verify of that backup (as db verify, in a scratch database), log retention, history
    retention (archived with the logs), expiry of old idempotency keys, optimize.

    A backup encrypted to SWARM_BACKUP_RECIPIENTS is verified with --identity (else
    SWARM_BACKUP_IDENTITY); on a server that holds no identity, pass --no-verify and verify
    elsewhere. Logs are deleted only after a verified backup.

    Meant for cron or a systemd timer; a second run while one is active exits at once. Exits
    1 if any step failed. Each option defaults to its setting (see `swarm-director config
    show`); an option wins over the setting.

    \b
    Example (crontab, daily at 03:10):
      10 3 * * * swarm-director db maintain --dir /var/backups/swarm --archive-dir /var/log/swarm
    """
    with opened(database_url) as (database, settings):
        retention = None
        if not no_cleanup:
            retention = RetentionPolicy(
                older_than=parse_duration(older_than) if older_than else settings.log_retention,
                keep=parse_keep(keep if keep is not None else settings.log_keep),
            )
        key_ttl = None
        if not no_key_expiry:
            key_ttl = (
                parse_duration(idempotency_ttl) if idempotency_ttl else settings.idempotency_ttl
            )
        history_ttl = None
        if not no_history_cleanup:
            history_ttl = (
                parse_duration(history_older_than)
                if history_older_than
                else settings.history_retention
            )
        recipients = backup_recipients(settings)
        policy = MaintenancePolicy(
            backup_dir=directory or settings.resolved_backup_dir(),
            keep_last=keep_last if keep_last is not None else settings.keep_last,
            keep_days=keep_days if keep_days is not None else settings.keep_days,
            key=None if recipients else backup_key(settings),
            recipients=recipients,
            verify=not no_verify,
            identities=None if no_verify else backup_identities(settings, identity_file),
            retention=retention,
            archive_dir=archive_dir or settings.log_archive_dir,
            idempotency_ttl=key_ttl,
            history_retention=history_ttl,
            optimize=not no_optimize,
            pg_bin=settings.pg_bin,
            partitions_ahead=(
                partitions_ahead if partitions_ahead is not None else settings.partitions_ahead
            ),
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
