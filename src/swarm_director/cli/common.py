"""What every command shares: the database option, opening the database, one-line errors."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from sqlalchemy import exc as sa_exc

from swarm_director.config import Settings, load_settings
from swarm_director.db import Database
from swarm_director.errors import SwarmError

F = TypeVar("F", bound=Callable[..., Any])


def database_option(f: F) -> F:
    """``--database-url`` (else ``DATABASE_URL``, else the embedded SQLite file)."""
    return click.option(
        "--database-url",
        metavar="URL",
        default=None,
        help="Database URL (default: $DATABASE_URL, else the embedded SQLite file).",
    )(f)


def json_option(f: F) -> F:
    """``--json``: print one JSON document instead of prose."""
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(f)


def yes_option(f: F) -> F:
    """``--yes``: skip the confirmation before destroying data."""
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(f)


def settings_for(database_url: str | None) -> Settings:
    """Settings from the environment, with ``--database-url`` taking precedence."""
    return load_settings(DATABASE_URL=database_url)


def open_database(database_url: str | None) -> Database:
    """The database the options and environment point at."""
    return Database.from_settings(settings_for(database_url))


def emit_json(payload: Any) -> None:
    """Print ``payload`` as indented JSON (datetimes and the like as strings)."""
    click.echo(json.dumps(payload, indent=2, default=str, sort_keys=False))


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def _database_error_message(error: sa_exc.DBAPIError | sa_exc.ArgumentError) -> str:
    orig = getattr(error, "orig", None)
    return f"database error: {_one_line(str(orig if orig is not None else error))}"


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn expected errors into one line on stderr and a non-zero exit (no traceback).

    Any URL that appears in a message is masked.
    """
    try:
        yield
    except SwarmError as error:
        raise click.ClickException(_mask(error.message)) from None
    except (sa_exc.DBAPIError, sa_exc.ArgumentError, sa_exc.NoSuchModuleError) as error:
        raise click.ClickException(_mask(_database_error_message(error))) from None


_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]*:)[^@\s]*(@)")


def _mask(message: str) -> str:
    """``message`` with the password of any URL in it replaced by ``***``."""
    return _PASSWORD_IN_URL.sub(r"\1***\2", message)


class SwarmGroup(click.Group):
    """A group whose commands report expected errors in one line."""

    def invoke(self, ctx: click.Context) -> Any:
        with cli_errors():
            return super().invoke(ctx)


def is_interactive() -> bool:
    """True when stdout is a terminal (progress bars are shown only then)."""
    return sys.stdout.isatty()
