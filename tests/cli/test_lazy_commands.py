"""The CLI imports a command's module only when that command runs: ``export`` (a
long-running, memory-bounded job) does not load the server's Flask and gunicorn nor the
backups' age and cryptography, and the
tables that say where each command lives stay true."""

from __future__ import annotations

import subprocess
import sys

import click

from swarm_director.cli.main import DB_COMMANDS, TOP_COMMANDS, cli, db, load_all


def _modules(group: click.Group) -> dict[str, str]:
    return {
        name: command.callback.__module__.rsplit(".", 1)[-1]
        for name, command in group.commands.items()
        if command.callback is not None
    }


def test_every_command_is_in_its_table_under_the_module_that_defines_it() -> None:
    load_all()
    top = _modules(cli)
    top.pop("db")  # defined beside cli itself
    assert top == TOP_COMMANDS
    assert _modules(db) == DB_COMMANDS


def test_running_export_imports_neither_the_server_nor_the_backup_crypto() -> None:
    # Each is memory the export's peak carries (its target: < 200 MB with pyarrow).
    probe = (
        "import sys\n"
        "from swarm_director.cli.main import cli\n"
        "try:\n"
        "    cli(['export', '--help'], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "unwanted = ('flask', 'gunicorn', 'httpx', 'pyrage', 'cryptography')\n"
        "print(sorted(m for m in unwanted if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert "--format" in out  # the export command's help was printed
    assert out.strip().splitlines()[-1] == "[]"


def test_help_still_lists_every_command() -> None:
    names = cli.list_commands(click.Context(cli))
    assert set(TOP_COMMANDS) | {"db"} == set(names)
    assert set(DB_COMMANDS) == set(db.list_commands(click.Context(db)))
