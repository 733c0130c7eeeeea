"""Entry point: ``swarm-director [serve|db ...|keys ...|config ...]``."""

from __future__ import annotations

import click

from swarm_director import __version__
from swarm_director.cli.common import SwarmGroup
from swarm_director.db.actor import begin_acting, cli_actor, end_acting


@click.group(cls=SwarmGroup)
@click.version_option(__version__, prog_name="swarm-director")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """SwarmDirector store: database, API server and operations tooling.

    \b
    Example:
      swarm-director db init && swarm-director db seed && swarm-director db status
    """
    # Every change a command makes is recorded in the history as cli:<user>@<host> (until the
    # command ends: a command run in process, e.g. by a test, leaves no actor behind).
    token = begin_acting(cli_actor())
    ctx.call_on_close(lambda: end_acting(token))


@cli.group(cls=SwarmGroup)
def db() -> None:
    """Schema, data and maintenance commands for the database."""


def _register() -> None:
    # Importing a command module attaches its commands to the groups above.
    from swarm_director.cli import (  # noqa: F401
        config_cmd,
        db_backup,
        db_schema,
        db_seed,
        db_upkeep,
        export_cmd,
        history_cmd,
        keys,
        logs,
        report_cmd,
        serve,
    )


_register()
