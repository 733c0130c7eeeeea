"""``swarm-director export logs|tasks|history``: every matching row into one file (JSON lines,
CSV or Parquet), for analysis elsewhere."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from swarm_director.cli.common import (
    database_option,
    emit_json,
    is_interactive,
    json_option,
    opened,
)
from swarm_director.cli.main import cli
from swarm_director.cli.output import human_bytes
from swarm_director.db import Database, utcnow
from swarm_director.durations import DurationError, parse_duration
from swarm_director.ops.export_file import check_target, pyarrow_modules, write_parquet, write_text
from swarm_director.schemas.export import FILTERS, ExportFormat, ExportKind
from swarm_director.store import export, export_parallel

#: Filters given by their own options, not by --filter.
_WINDOW = ("since", "until")


def default_jobs(dialect: str) -> int:
    """The worker processes of an export when ``--jobs`` is not given. SQLite: one a core, up
    to 4 (SQLite formats each line in the process reading it, so workers share that work out).
    PostgreSQL: 1 (the server formats the lines; a worker is one more server process doing
    it, which on one machine gained little and added load: docs/benchmarks.md, "Export")."""
    return max(1, min(4, os.cpu_count() or 1)) if dialect == "sqlite" else 1


#: The format of an --out file name, when --format is not given.
_SUFFIXES = {f".{f.value}": f for f in ExportFormat}


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    kind: ExportKind
    format: ExportFormat
    rows: int
    bytes: int
    file: Path
    jobs: int
    """The processes that read the rows: ``jobs`` asked for, or 1 where workers cannot be
    forked."""


def export_to_file(
    db: Database,
    kind: ExportKind,
    fmt: ExportFormat,
    out: Path,
    export_filter: dict[str, Any] | None = None,
    *,
    cursor: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
    count: Callable[[int], None] | None = None,
    jobs: int | None = None,
) -> ExportResult:
    """Export the rows of ``kind`` matching ``export_filter`` (after ``cursor``) to ``out``.

    Everything is checked before the file is made (filter, cursor, target, pyarrow for
    Parquet): bad input raises ValidationError or ExportError and writes nothing; a failure
    while writing leaves nothing under ``out`` either. ``count`` is called with the number
    of rows before they are read (a COUNT query; only when given), ``progress`` with the rows
    written so far. ``jobs`` > 1: that many worker processes read the rows, from one snapshot
    (:mod:`swarm_director.store.export_parallel`; one process where workers cannot be forked);
    the file is the same. None: :func:`default_jobs`."""
    check_target(out, overwrite=overwrite)
    if fmt is ExportFormat.PARQUET:
        pyarrow_modules()
    rows = 0

    def done(n: int) -> None:
        nonlocal rows
        rows = n
        if progress is not None:
            progress(n)

    with db.read() as session:
        prepared = export.prepare_export(session, kind, export_filter, cursor=cursor)
        connection = session.connection()
        if count is not None:
            count(export.count_rows(connection, prepared))
        # Closed before the session ends, also on an error: a statement still being read
        # (PostgreSQL's COPY) would keep the connection from rolling back.
        # Parquet is parsed from the CSV text (ops.export_file.write_parquet).
        text = ExportFormat.CSV if fmt is ExportFormat.PARQUET else fmt
        if jobs is None:
            jobs = default_jobs(db.dialect)
        if jobs > 1 and not export_parallel.can_fork():
            jobs = 1
        if jobs > 1:
            read = export_parallel.parallel_chunks(db.engine, prepared, text, jobs)
        else:
            read = export.text_chunks(connection, prepared, text)
        with closing(read) as chunks:
            if fmt is ExportFormat.PARQUET:
                size = write_parquet(out, prepared.fields, chunks, done)
            else:
                size = write_text(out, chunks, done)
    return ExportResult(kind, fmt, rows, size, out, jobs)


def _moment(text: str | None, option: str) -> datetime | None:
    """A duration back from now (``7d``) or an ISO 8601 date or time (UTC unless it says)."""
    if text is None:
        return None
    try:
        return utcnow() - parse_duration(text)
    except DurationError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a duration (7d, 12h) nor an ISO 8601 date or time",
            param_hint=option,
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _filters(kind: ExportKind, given: tuple[str, ...]) -> dict[str, str]:
    names = [n for n in FILTERS[kind].filter_names() if n not in _WINDOW]
    wanted: dict[str, str] = {}
    for item in given:
        name, sep, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--filter")
        if name not in names:
            raise click.BadParameter(
                f"{kind} have no filter {name!r}; they have {', '.join(names)}",
                param_hint="--filter",
            )
        if name in wanted:
            raise click.BadParameter(f"{name} is given twice", param_hint="--filter")
        wanted[name] = value
    return wanted


def _format(fmt: str | None, out: Path) -> ExportFormat:
    if fmt is not None:
        return ExportFormat(fmt)
    found = _SUFFIXES.get(out.suffix.lower())
    if found is None:
        raise click.UsageError(f"give --format: {out.name} does not end in {', '.join(_SUFFIXES)}")
    return found


@contextmanager
def _progress_bar(label: str) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """(count, progress) callbacks drawing a click progress bar."""
    state: dict[str, Any] = {"bar": None, "done": 0}

    def count(total: int) -> None:
        state["bar"] = click.progressbar(length=max(total, 1), label=label, show_pos=True)
        state["bar"].__enter__()

    def progress(done: int) -> None:
        bar = state["bar"]
        if bar is not None:
            bar.update(done - state["done"])
            state["done"] = done

    try:
        yield count, progress
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)


@cli.command("export")
@click.argument("kind", type=click.Choice([k.value for k in ExportKind]))
@click.option(
    "--out",
    "-o",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="The file to write (made whole or not at all).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in ExportFormat]),
    help="jsonl, csv or parquet [default: from the --out suffix].",
)
@click.option("--since", help="Only rows at or after this: a duration back (7d) or ISO 8601.")
@click.option("--until", help="Only rows before this: a duration back (1h) or ISO 8601.")
@click.option(
    "--filter",
    "-f",
    "filters",
    multiple=True,
    metavar="NAME=VALUE",
    help="A filter of the kind's list (repeatable), e.g. level=warning, task_id=7, "
    "status=failed, actor=agent-7, q=timeout.",
)
@click.option(
    "--cursor",
    type=click.IntRange(1),
    help="Start after this row: the id of the last row of an earlier export.",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 16),
    help="Worker processes reading the rows (one snapshot, the same file); 1: read in this "
    "process. [default: one a core, up to 4, on SQLite; 1 on PostgreSQL]",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@database_option
@json_option
def export_cmd(
    kind: str,
    out: Path,
    fmt: str | None,
    since: str | None,
    until: str | None,
    filters: tuple[str, ...],
    cursor: int | None,
    jobs: int | None,
    force: bool,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Write every log, task or history row matching the filters to one file.

    Rows come in a stable order (logs by timestamp then id, tasks and history by id) from one
    snapshot of the database. Logs are filtered by timestamp, tasks by creation time,
    history by the time of the change. Bad input writes nothing; a failed export leaves no
    file behind. Parquet needs pyarrow (pip install 'swarm-director[parquet]').

    \b
    Examples:
      swarm-director export logs --since 7d --filter level=warning --out warnings.jsonl
      swarm-director export tasks --filter status=failed --format csv --out failed.csv
      swarm-director export history --since 2026-12-01 --until 2026-12-02 -o day.parquet
    """
    export_kind = ExportKind(kind)
    wanted: dict[str, Any] = dict(_filters(export_kind, filters))
    wanted.update(since=_moment(since, "--since"), until=_moment(until, "--until"))
    export_format = _format(fmt, out)
    started = time.monotonic()
    with opened(database_url) as (db, _settings), ExitStack() as stack:
        count = progress = None
        if is_interactive() and not as_json:
            count, progress = stack.enter_context(_progress_bar(f"Exporting {kind}"))
        result = export_to_file(
            db,
            export_kind,
            export_format,
            out,
            wanted,
            cursor=cursor,
            overwrite=force,
            progress=progress,
            count=count,
            jobs=jobs,
        )
    elapsed = time.monotonic() - started
    if as_json:
        emit_json(
            {
                "kind": result.kind.value,
                "format": result.format.value,
                "rows": result.rows,
                "bytes": result.bytes,
                "file": str(result.file),
                "jobs": result.jobs,
                "seconds": round(elapsed, 3),
            }
        )
        return
    click.echo(
        f"exported {result.rows:,} {kind} to {result.file} "
        f"({result.format.value}, {human_bytes(result.bytes)}) in {elapsed:.1f} s"
    )
