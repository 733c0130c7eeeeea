"""Creating and dropping whole databases (not their tables)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import URL

from swarm_director.db.engine import make_engine, sqlite_file
from swarm_director.private_files import private_dir


def database_exists(url: URL) -> bool:
    """Whether the database named by ``url`` exists (a file for SQLite, a catalog entry else)."""
    path = sqlite_file(url)
    if url.get_backend_name() == "sqlite":
        return path is None or path.exists()
    engine = make_engine(url.set(database="postgres"))
    try:
        with engine.connect() as conn:
            found = conn.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            )
    finally:
        engine.dispose()
    return found is not None


def create_database(url: URL) -> bool:
    """Create the database if it does not exist; True if it was created."""
    if database_exists(url):
        return False
    path = sqlite_file(url)
    if path is not None:
        private_dir(path.parent)
        return True  # the engine creates the file (0600) on first connect
    try:
        create_server_database(url, str(url.database))
    except sa.exc.DBAPIError:
        # Another process (a second `db init`) created it between our check and our CREATE:
        # PostgreSQL then says "already exists" or violates pg_database's unique name index.
        if database_exists(url):
            return False
        raise
    return True


def _server_execute(server: URL, statement: str, name: str) -> None:
    """Run ``statement`` (CREATE/DROP DATABASE with one ``{}`` slot for the database name) on
    the maintenance database of ``server``'s PostgreSQL, outside a transaction."""
    engine = make_engine(server.set(database="postgres"))
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(statement.format(conn.dialect.identifier_preparer.quote(name)))
    finally:
        engine.dispose()


def create_server_database(server: URL, name: str) -> None:
    """``CREATE DATABASE name`` on the PostgreSQL server ``server`` points at (the name is
    quoted by the dialect's identifier preparer). Raises the driver's error if it exists."""
    _server_execute(server, "CREATE DATABASE {}", name)


def drop_server_database(server: URL, name: str) -> None:
    """``DROP DATABASE IF EXISTS name WITH (FORCE)`` (connections to it are ended)."""
    _server_execute(server, "DROP DATABASE IF EXISTS {} WITH (FORCE)", name)


def drop_all_tables(url: URL) -> list[str]:
    """Drop every table in the database, ours or not; returns their names."""
    engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            names = sa.inspect(conn).get_table_names()
            preparer = conn.dialect.identifier_preparer
            if conn.dialect.name == "sqlite":
                # Dropping in any order needs FK enforcement off (tasks <-> conversations).
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                for name in names:
                    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {preparer.quote(name)}")
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            else:
                for name in names:
                    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {preparer.quote(name)} CASCADE")
    finally:
        engine.dispose()
    return names
