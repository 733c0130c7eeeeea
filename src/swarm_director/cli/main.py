"""Entry point: ``swarm-director [serve|db ...|keys ...|config ...]``."""

from __future__ import annotations

import click

from swarm_director import __version__
from swarm_director.cli.common import SwarmGroup
from swarm_director.store.actor import begin_acting, cli_actor


@click.group(cls=SwarmGroup)
@click.version_option(__version__, prog_name="swarm-director")
def cli() -> None:
    """SwarmDirector store: database, API server and operations tooling.

    \b
    Example:
      swarm-director db init && swarm-director db seed && swarm-director db status
    """
    # Every change a command makes is recorded in the history as cli:<user>@<host>.
    begin_acting(cli_actor())


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
        history_cmd,
        keys,
        logs,
        serve,
    )


_register()
