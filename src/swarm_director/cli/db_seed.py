"""``db seed``: demo data, or a large synthetic data set with ``--scale``."""

from __future__ import annotations

from datetime import timedelta

import click

from swarm_director.cli.common import database_option, emit_json, is_interactive, json_option
from swarm_director.cli.db_schema import existing_database
from swarm_director.cli.main import db
from swarm_director.db import Database
from swarm_director.durations import DurationError, parse_duration
from swarm_director.errors import SchemaError
from swarm_director.migrations import migrate
from swarm_director.models import MaintenanceOperation
from swarm_director.ops import audit
from swarm_director.seeding.demo import seed_demo
from swarm_director.seeding.past_week import grow_past
from swarm_director.seeding.synthetic import seed_synthetic


@db.command("seed")
@click.option(
    "--scale",
    type=click.IntRange(min=1, max=10_000_000),
    default=None,
    help="Also add N synthetic tasks with --logs-per-task logs each (for benchmarks).",
)
@click.option(
    "--logs-per-task",
    type=click.IntRange(min=0, max=100_000),
    default=200,
    show_default=True,
    help="Logs per synthetic task (with --scale).",
)
@click.option(
    "--past",
    metavar="DURATION",
    help="Also grow this much past work of the demo swarm (e.g. 7d), for reports and charts; "
    "once per database.",
)
@database_option
@json_option
def seed_cmd(
    scale: int | None,
    logs_per_task: int,
    past: str | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Add the demo swarm (idempotent) and, with --scale, a large synthetic data set.

    \b
    Examples:
      swarm-director db seed
      swarm-director db seed --past 7d                          # a week of history
      swarm-director db seed --scale 5000 --logs-per-task 200   # 1,000,000 logs
    """
    past_days = _days(past)
    with existing_database(database_url) as database:
        if not migrate.is_at_head(database.engine):
            raise SchemaError("schema is not at head; run `swarm-director db upgrade` first")
        result: dict[str, object] = {}
        with audit.record(database.engine, MaintenanceOperation.SEED) as details:
            with database.transaction() as session:
                demo = seed_demo(session)
            result["demo"] = demo.counts if demo.created else "already present"
            if past_days:
                with database.transaction() as session:
                    grown = grow_past(session, past_days)
                result["past"] = grown or "already present"
            if scale:
                result["synthetic"] = _synthetic(database, scale, logs_per_task, as_json)
            details.update(result)
    if as_json:
        emit_json(result)
        return
    if demo.created:
        click.echo(
            "Seeded the demo swarm: " + ", ".join(f"{v} {k}" for k, v in demo.counts.items())
        )
    else:
        click.echo("Demo swarm already present; left unchanged.")
    if past_days:
        grown_text = result["past"]
        if isinstance(grown_text, dict):
            click.echo(
                f"Grew {past} of past work: " + ", ".join(f"{v} {k}" for k, v in grown_text.items())
            )
        else:
            click.echo("Past work already present; left unchanged.")
    if scale:
        added = result["synthetic"]
        assert isinstance(added, dict)
        click.echo(f"Added {added['tasks']:,} synthetic tasks and {added['agent_logs']:,} logs.")


def _days(past: str | None) -> float:
    if past is None:
        return 0.0
    try:
        span = parse_duration(past)
    except DurationError as error:
        raise click.BadParameter(error.message, param_hint="--past") from None
    if not timedelta(hours=1) <= span <= timedelta(days=62):
        raise click.BadParameter("must be from 1h to 62d", param_hint="--past")
    return span / timedelta(days=1)


def _synthetic(database: Database, scale: int, logs_per_task: int, quiet: bool) -> dict[str, int]:
    if quiet or not is_interactive():
        return seed_synthetic(database, scale, logs_per_task)
    with click.progressbar(length=scale, label="Seeding synthetic tasks") as bar:
        return seed_synthetic(database, scale, logs_per_task, progress=bar.update)
