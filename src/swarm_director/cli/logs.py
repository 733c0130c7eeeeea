"""``swarm-director logs tail``: follow agent logs live over the API (Server-Sent Events)."""

from __future__ import annotations

from typing import TextIO

import click

from swarm_director.cli.common import SwarmGroup, json_option
from swarm_director.cli.main import cli
from swarm_director.client import Client, ClientError
from swarm_director.config import load_settings
from swarm_director.enums import LogLevel
from swarm_director.schemas import LogOut

DEFAULT_URL = "http://127.0.0.1:5000"


@cli.group(cls=SwarmGroup)
def logs() -> None:
    """Agent logs over the REST API."""


def format_record(record: LogOut) -> str:
    """One line for a record: time, level, task, agent type, message."""
    stamp = record.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    level = record.log_level.upper()
    return f"{stamp} {level:<7} task {record.task_id} {record.agent_type}: {record.message}"


@logs.command("tail")
@click.option("--task", "task_id", type=click.IntRange(1), help="Only this task's logs.")
@click.option(
    "--level",
    type=click.Choice([level.value for level in LogLevel]),
    help="Minimum level: warning shows warnings and errors.",
)
@click.option("--agent-type", help="Only records of this agent type.")
@click.option("--session", "session_id", help="Only records of this session id.")
@click.option("--cursor", help="Resume after this event id (printed with --json).")
@click.option("--url", default=DEFAULT_URL, show_default=True, help="The API's base URL.")
@click.option(
    "--token-file",
    type=click.File("r", encoding="utf-8"),
    help="Read the API key from this file (first line); default: $SWARM_API_TOKEN.",
)
# Kept for scripts that use it, but not shown: a key on the command line is visible to every
# local user (ps, /proc) and lands in shell history.
@click.option("--token", hidden=True)
@click.option(
    "--idle-exit",
    type=click.FloatRange(min=0.1),
    help="Exit after this many seconds without a record (default: run until Ctrl+C).",
)
@json_option
def tail_cmd(
    task_id: int | None,
    level: str | None,
    agent_type: str | None,
    session_id: str | None,
    cursor: str | None,
    url: str,
    token_file: TextIO | None,
    token: str | None,
    idle_exit: float | None,
    as_json: bool,
) -> None:
    """Print log records as they are stored, until Ctrl+C.

    Reconnects by itself when the connection drops, without losing or repeating a record.
    The API key comes from a file (--token-file) or the environment (SWARM_API_TOKEN), never
    from the command line, where other local users could read it.

    \b
    Example:
      swarm-director logs tail --task 7 --level warning
      swarm-director logs tail --url https://store.example.com --token-file ~/.swarm-key --json
    """
    if token_file is not None:
        token = token_file.readline().strip()
        if not token:
            raise click.ClickException(f"{token_file.name} holds no API key on its first line")
    elif token is None:
        secret = load_settings().api_token
        token = secret.get_secret_value() if secret else None
    try:
        with Client(url, token) as client:
            for record in client.follow_logs(
                task_id,
                level=level,
                agent_type=agent_type,
                session_id=session_id,
                cursor=cursor,
                idle_timeout=idle_exit,
            ):
                line = record.model_dump_json(by_alias=True) if as_json else format_record(record)
                click.echo(line)
    except KeyboardInterrupt:
        return
    except ClientError as error:
        raise click.ClickException(f"{error.message} ({url})") from None
