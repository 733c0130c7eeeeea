"""Run the package's Alembic migrations against an engine, without an ``alembic.ini``.

Every function takes a SQLAlchemy :class:`~sqlalchemy.Engine` (e.g. from
:func:`swarm_director.db.make_engine`). Upgrades and downgrades run on one connection handed to
``env.py`` through ``config.attributes["connection"]``, in one transaction per call.
Problems a user can fix (an unknown revision, a database migrated by a newer version) raise
:class:`~swarm_director.errors.SchemaError` with a one-line message.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import NamedTuple

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import Connection, Engine

from swarm_director.db.engine import READ_ONLY
from swarm_director.errors import SchemaError
from swarm_director.redact import first_line

#: The Alembic script directory shipped inside the package.
MIGRATIONS_DIR = Path(__file__).resolve().parent

# "-1", "+2", "head-1", "001_initial_schema+1": Alembic resolves these relative to a base.
_RELATIVE = re.compile(r"^(?P<base>.*?)(?P<step>[+-]\d+)$")
_SYMBOLIC = frozenset({"head", "heads", "base"})

# Alembic's ``context`` (used by env.py) is one proxy per process: run one command at a time.
# Other processes are kept apart by the database (BEGIN IMMEDIATE, an advisory lock).
_COMMAND_LOCK = threading.Lock()


class RevisionInfo(NamedTuple):
    """One revision of the migration history."""

    revision: str
    """Its id, e.g. ``002_add_agent_hierarchy``."""
    down_revision: str | None
    """The revision it applies on top of; None for the first one."""
    doc: str
    """First paragraph of its docstring, on one line."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the package's migrations, optionally bound to ``connection``."""
    config = Config()
    # Config options go through ConfigParser interpolation: a literal % must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The id of the newest revision (the schema the models describe)."""
    try:
        head = _script().get_current_head()
    except (CommandError, RevisionError) as error:
        raise SchemaError(f"migration history is broken: {first_line(error)}") from None
    if head is None:
        raise SchemaError("migration history is empty")
    return head


def history() -> list[RevisionInfo]:
    """Every revision, oldest first."""
    revisions = [
        RevisionInfo(
            revision=script.revision,
            down_revision=_single_down_revision(script.down_revision),
            doc=" ".join(script.doc.split()),
        )
        for script in _script().walk_revisions()
    ]
    revisions.reverse()
    return revisions


def _single_down_revision(down: str | Sequence[str] | None) -> str | None:
    if down is None or isinstance(down, str):
        return down
    return ", ".join(down)  # a merge revision; the history is linear so far


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, as recorded in it; None for an unmigrated database.

    The value is returned even when this version does not know it (see :func:`is_at_head`).
    """
    with engine.execution_options(**{READ_ONLY: True}).connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    if len(heads) > 1:
        raise SchemaError(f"database has several revisions at once: {', '.join(heads)}")
    return heads[0] if heads else None


def _known_revisions() -> list[str]:
    return [info.revision for info in history()]


def _require_known_database(engine: Engine) -> str | None:
    current = current_revision(engine)
    if current is not None and current not in _known_revisions():
        raise SchemaError(
            f"database is at revision {current!r}, which this version does not know "
            f"(newest known: {head_revision()!r}); was it migrated by a newer version?"
        )
    return current


def _target_position(revision: str) -> int | None:
    """Where ``revision`` sits in the history (-1 = base), or None for a relative step."""
    relative = _RELATIVE.match(revision)
    if relative:
        base = relative.group("base")
        if base and base not in _SYMBOLIC:
            _target_position(base)  # an unknown base is reported like any unknown revision
        return None
    if revision == "base":
        return -1
    known = _known_revisions()
    if revision in ("head", "heads"):
        return len(known) - 1
    try:
        found = _script().get_revision(revision)
    except (CommandError, RevisionError) as error:
        raise SchemaError(f"unknown revision {revision!r}: {first_line(error)}") from None
    if found is None or found.revision not in known:
        raise SchemaError(f"unknown revision {revision!r}")
    return known.index(found.revision)


def _run(engine: Engine, revision: str, *, down: bool) -> None:
    target = _target_position(revision)
    current = _require_known_database(engine)
    if target is not None:
        # Alembic would silently do nothing when asked to "upgrade" to an older revision.
        position = -1 if current is None else _known_revisions().index(current)
        if not down and target < position:
            raise SchemaError(f"database is at {current}, past {revision!r}: downgrade to go back")
        if down and target > position:
            raise SchemaError(
                f"database is at {current or 'base (empty)'}, before {revision!r}: "
                "upgrade to go forward"
            )
    with _COMMAND_LOCK, engine.connect() as connection:
        config = alembic_config(connection)
        try:
            if down:
                command.downgrade(config, revision)
            else:
                command.upgrade(config, revision)
        except (CommandError, RevisionError) as error:
            direction = "downgrade" if down else "upgrade"
            raise SchemaError(f"cannot {direction} to {revision!r}: {first_line(error)}") from None
        except Exception as error:
            # A revision failed while running (bad SQL, data it did not expect, a bug): the
            # whole call ran in one transaction, so nothing of it stayed.
            direction = "downgrade" if down else "upgrade"
            raise SchemaError(
                f"{direction} failed in revision {_failing_revision(error)} and was rolled back "
                f"(the database is still at {current or 'base (empty)'}): "
                f"{_error_line(error)}"
            ) from error


def _failing_revision(error: BaseException) -> str:
    """The id of the revision script in whose code ``error`` was raised (innermost), or "?"."""
    found = "?"
    versions = str(MIGRATIONS_DIR / "versions")
    tb = error.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_filename.startswith(versions):
            found = str(frame.f_globals.get("revision", found))
        tb = tb.tb_next
    return found


def _error_line(error: Exception) -> str:
    return f"{type(error).__name__}: {first_line(error)}"


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (default: head), in one transaction.

    ``revision`` is an id (or an unambiguous prefix such as ``002``), ``head``, or a relative
    step such as ``+1``. Already being there is not an error.
    """
    _run(engine, revision, down=False)


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade the database to ``revision`` (an id, a prefix, ``base`` or e.g. ``-1``).

    Rows of the tables the downgraded revisions do not drop are kept.
    """
    _run(engine, revision, down=True)


def pending_revisions(engine: Engine) -> list[str]:
    """Revisions an upgrade to head would apply, oldest first; empty when at head."""
    current = _require_known_database(engine)
    known = _known_revisions()
    start = 0 if current is None else known.index(current) + 1
    return known[start:]


def is_at_head(engine: Engine) -> bool:
    """True when the database is at the newest revision.

    Raises :class:`SchemaError` if the database is at a revision this version does not know,
    since "behind" would then be the wrong diagnosis.
    """
    return _require_known_database(engine) == head_revision()
