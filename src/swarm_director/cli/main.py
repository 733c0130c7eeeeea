"""Entry point: ``swarm-director [serve|db ...|keys ...|config ...]``."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click

from swarm_director import __version__
from swarm_director.cli.common import SwarmGroup
from swarm_director.db.actor import begin_acting, cli_actor, end_acting

_PACKAGE = "swarm_director.cli."
#: Which module defines each command (imported when the command is asked for).
TOP_COMMANDS = {
    "config": "config_cmd",
    "export": "export_cmd",
    "history": "history_cmd",
    "keys": "keys",
    "logs": "logs",
    "report": "report_cmd",
    "serve": "serve",
}
DB_COMMANDS = {
    **dict.fromkeys(["backup", "backups", "verify", "restore", "backup-key"], "db_backup"),
    **dict.fromkeys(
        [
            "init",
            "upgrade",
            "downgrade",
            "current",
            "history",
            "revision",
            "reset",
            "status",
            "validate-schema",
            "export-schema",
        ],
        "db_schema",
    ),
    "seed": "db_seed",
    **dict.fromkeys(
        ["check", "rebuild-rollups", "optimize", "stats", "cleanup-logs", "maintain"], "db_upkeep"
    ),
}


class LazyGroup(SwarmGroup):
    """A group that imports a command's module when the command is asked for: a command
    runs without the others' imports (``export`` loads neither Flask nor gunicorn, which kept
    30 MB in a Parquet export's peak memory). Listing the commands (``--help``) imports them
    all; a name missing from ``modules`` does too, so a command left out of the table still
    runs."""

    def __init__(self, *args: Any, modules: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.modules = modules

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            module = self.modules.get(cmd_name)
            if module is None:
                load_all()
            else:
                importlib.import_module(_PACKAGE + module)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        load_all()
        return super().list_commands(ctx)


def load_all() -> None:
    """Import every command module (each attaches its commands to the groups here)."""
    for module in {*TOP_COMMANDS.values(), *DB_COMMANDS.values()}:
        importlib.import_module(_PACKAGE + module)


@click.group(cls=LazyGroup, modules=TOP_COMMANDS)
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


@cli.group(cls=LazyGroup, modules=DB_COMMANDS)
def db() -> None:
    """Schema, data and maintenance commands for the database."""
