"""What every command shares: the database option, opening the database, one-line errors."""

from __future__ import annotations

import errno
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from sqlalchemy import exc as sa_exc

from swarm_director.config import Settings, default_text, load_settings
from swarm_director.db import Database
from swarm_director.errors import SwarmError
from swarm_director.redact import first_line, mask_urls

if TYPE_CHECKING:
    from swarm_director.ops.crypto.age import Identity

F = TypeVar("F", bound=Callable[..., Any])


def database_option(f: F) -> F:
    """``--database-url`` (else ``DATABASE_URL``, else the embedded SQLite file)."""
    return click.option(
        "--database-url",
        metavar="URL",
        default=None,
        help="Database URL (default: $DATABASE_URL, else the embedded SQLite file).",
    )(f)


def from_setting(field: str) -> str:
    """``[SWARM_NAME: default]`` for the help of an option that falls back to the setting
    ``field``, so the help never repeats a default that could drift from config.py."""
    env_name = Settings.model_fields[field].alias or field
    default = default_text(field)
    return f"[{env_name}]" if default == "unset" else f"[{env_name}: {default}]"


def json_option(f: F) -> F:
    """``--json``: print one JSON document instead of prose."""
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(f)


def yes_option(f: F) -> F:
    """``--yes``: skip the confirmation before destroying data."""
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(f)


class ProblemsFound(SwarmError):
    """A command ran and found something wrong (exit status 1)."""


def settings_for(database_url: str | None) -> Settings:
    """Settings from the environment, with ``--database-url`` taking precedence."""
    return load_settings(DATABASE_URL=database_url)


def open_database(database_url: str | None) -> Database:
    """The database the options and environment point at."""
    return Database.from_settings(settings_for(database_url))


@contextmanager
def opened(database_url: str | None) -> Iterator[tuple[Database, Settings]]:
    """The database and the settings it was opened with; the pool is closed afterwards."""
    settings = settings_for(database_url)
    database = Database.from_settings(settings)
    try:
        yield database, settings
    finally:
        database.dispose()


def backup_identities(
    settings: Settings, identity_file: Path | None = None
) -> list[Identity] | None:
    """The identities of ``--identity`` (else ``SWARM_BACKUP_IDENTITY``); None when neither
    is given. The file's content is never printed, also not in errors."""
    # Imported here: age and cryptography are memory that commands without backups (an
    # export's peak) would carry.
    from swarm_director.ops.crypto.age import load_identities

    if identity_file is not None:
        return load_identities(identity_file, "--identity")
    path = settings.backup_identity
    return load_identities(path) if path is not None else None


def identity_option(f: F) -> F:
    """``--identity FILE``: the age identity file that opens encrypted backups."""
    return click.option(
        "--identity",
        "identity_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="age identity file that opens the backup [default: SWARM_BACKUP_IDENTITY].",
    )(f)


def emit_json(payload: Any) -> None:
    """Print ``payload`` as indented JSON (datetimes and the like as strings)."""
    click.echo(json.dumps(payload, indent=2, default=str, sort_keys=False))


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn expected errors into one line on stderr and a non-zero exit (no traceback).

    Any URL that appears in a message is masked.
    """
    try:
        yield
    except SwarmError as error:
        raise click.ClickException(mask_urls(error.message)) from None
    except (sa_exc.DBAPIError, sa_exc.ArgumentError, sa_exc.NoSuchModuleError) as error:
        raise click.ClickException(mask_urls(f"database error: {first_line(error)}")) from None
    except OSError as error:
        raise click.ClickException(mask_urls(os_error_line(error))) from None


def os_error_line(error: OSError) -> str:
    """``error`` in one line naming what failed and where, e.g. ``cannot write
    /proc/nope/x: No such file or directory``."""
    reason = error.strerror or first_line(error)
    if error.errno in (errno.EEXIST, errno.ENOTDIR):
        reason = "a file is in the way where a folder is needed"
    where = error.filename
    if where is None:
        return reason
    target = f"{where} -> {error.filename2}" if error.filename2 is not None else str(where)
    return f"{target}: {reason}"


class SwarmGroup(click.Group):
    """A group whose commands report expected errors in one line."""

    def invoke(self, ctx: click.Context) -> Any:
        with cli_errors():
            return super().invoke(ctx)


def is_interactive() -> bool:
    """True when stdout is a terminal (progress bars are shown only then)."""
    return sys.stdout.isatty()
