"""Alembic environment: runs the revisions on one connection, in one transaction.

The connection comes from ``config.attributes["connection"]`` (a Connection, as
:mod:`swarm_director.migrations.migrate` passes, or an Engine to connect with, as pytest-alembic
passes) or, when there is none, from an engine built for the ``sqlalchemy.url`` option.
Either way every revision of one ``upgrade``/``downgrade`` call runs in a single transaction,
so a failure leaves the schema where it was.

SQLite: batch mode rebuilds a table (create a copy, copy the rows, drop the original, rename).
With ``PRAGMA foreign_keys=ON`` dropping the original is an implicit ``DELETE`` that would
cascade into, or null out, the rows of every table referencing it. The pragma is a no-op
inside a transaction, so it is switched off on the connection before the transaction begins
and restored after it ends; ``PRAGMA foreign_key_check`` runs before the commit instead, and
any violation rolls the whole migration back.

PostgreSQL: a transaction-level advisory lock makes concurrent migrators run one after the
other (the second finds the work done). SQLite gets the same from ``BEGIN IMMEDIATE``, which
engines from :func:`swarm_director.db.make_engine` emit on every write transaction (and which
also makes SQLite's DDL transactional under pysqlite).
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, Engine, text

from swarm_director import models  # noqa: F401  (registers every table on Base.metadata)
from swarm_director.db import Base, make_engine
from swarm_director.db.partitions import partition_names
from swarm_director.errors import SchemaError
from swarm_director.models.fulltext import full_text_names

config = context.config
target_metadata = Base.metadata

#: Advisory lock key held while migrating a PostgreSQL database (any constant works, as long
#: as every migrator uses the same one).
PG_MIGRATION_LOCK = 0x5D_0001


def _migrate(connection: Connection) -> None:
    # Configured inside the caller's transaction so that Alembic treats it as external and
    # does not open (and commit) transactions of its own per revision.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        include_name=_not_models(connection),
    )
    context.run_migrations()


def _not_models(connection: Connection) -> Any:
    # FTS5 tables (and their shadow tables), the search expression indexes and the monthly
    # partitions of agent_logs are made by the revisions' own SQL and by db maintain, not by
    # the models: autogenerate must neither drop nor add them.
    skipped = full_text_names() | set(partition_names(connection))

    def include_name(name: str | None, type_: str, _parents: Any) -> bool:
        return type_ not in ("table", "index") or name not in skipped

    return include_name


def _sqlite_foreign_keys(driver_connection: Any) -> bool:
    row = driver_connection.execute("PRAGMA foreign_keys").fetchone()
    return bool(row and row[0])


def _set_sqlite_foreign_keys(driver_connection: Any, on: bool) -> None:
    driver_connection.execute("PRAGMA foreign_keys=ON" if on else "PRAGMA foreign_keys=OFF")


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if problems:
        table, rowid, parent = problems[0][0], problems[0][1], problems[0][2]
        raise SchemaError(
            f"migration rolled back: {len(problems)} row(s) violate foreign keys "
            f"(first: {table} rowid {rowid} references a missing {parent} row)"
        )


def _run_sqlite(connection: Connection) -> None:
    if connection.in_transaction():
        # The caller owns the transaction, so the pragma can no longer be changed here.
        if _sqlite_foreign_keys(connection.connection.driver_connection):
            raise SchemaError(
                "cannot migrate SQLite inside a transaction with foreign keys on: "
                "pass a connection outside a transaction"
            )
        _migrate(connection)
        _check_sqlite_foreign_keys(connection)
        return
    driver_connection = connection.connection.driver_connection
    was_on = _sqlite_foreign_keys(driver_connection)
    _set_sqlite_foreign_keys(driver_connection, False)
    try:
        with connection.begin():  # BEGIN IMMEDIATE: the write lock for the whole run
            _migrate(connection)
            _check_sqlite_foreign_keys(connection)
    finally:
        if was_on and not connection.invalidated:
            _set_sqlite_foreign_keys(driver_connection, True)


def _run_other(connection: Connection) -> None:
    if connection.in_transaction():
        _migrate(connection)
        return
    with connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK}
            )
        _migrate(connection)


def run_migrations(connection: Connection) -> None:
    """Run the requested migration on ``connection`` (see the module docstring)."""
    if connection.dialect.name == "sqlite":
        _run_sqlite(connection)
    else:
        _run_other(connection)


def run_migrations_from_url() -> None:
    """Run the requested migration on a connection to the ``sqlalchemy.url`` option."""
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SchemaError(
            "no database to migrate: set config.attributes['connection'] or sqlalchemy.url"
        )
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    # Batch mode reflects SQLite tables before rebuilding them; that needs a live database.
    raise SchemaError("offline (--sql) migrations are not supported")


def run_migrations_from_attribute(connectable: Connection | Engine) -> None:
    """Run the requested migration on the caller's Connection, or on a new connection of the
    caller's Engine (Alembic's cookbook recipe; what pytest-alembic passes). The caller owns
    the Engine, so it is not disposed here."""
    if isinstance(connectable, Connection):
        run_migrations(connectable)
        return
    with connectable.connect() as connection:
        run_migrations(connection)


_connectable = config.attributes.get("connection")
if _connectable is not None:
    run_migrations_from_attribute(_connectable)
else:
    run_migrations_from_url()
