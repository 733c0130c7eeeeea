"""Running ``pg_dump`` / ``pg_restore``: found in a given folder (the ``pg_bin`` setting) or on
PATH, version-checked,
called with an argument list and the password in the environment (never on the command line).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.engine import URL

from swarm_director.ops.errors import ToolError
from swarm_director.redact import mask_urls

#: The setting that names the folder, for messages.
BIN_SETTING = "SWARM_PG_BIN"

# libpq reads these; URL query parameters with the same meaning are passed through.
_QUERY_ENV = {
    "password": "PGPASSWORD",  # libpq and psycopg accept it as a query parameter too
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "application_name": "PGAPPNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}


def find_tool(name: str, folder: Path | None = None) -> str:
    """Absolute path of ``name`` (``pg_dump``/``pg_restore``): in ``folder`` when given, else
    on PATH. Raises :class:`ToolError` saying what to install or set."""
    if folder is not None:
        candidate = Path(folder) / name
        if candidate.is_file():
            return str(candidate)
        raise ToolError(f"{name} not found in {BIN_SETTING}={folder}")
    found = shutil.which(name)
    if found is None:
        raise ToolError(
            f"{name} not found on PATH: install the PostgreSQL client (e.g. postgresql-client) "
            f"or set {BIN_SETTING}"
        )
    return found


def libpq_env(url: URL) -> dict[str, str]:
    """Environment for a libpq program to connect where ``url`` points (password included)."""
    env = dict(os.environ)
    for key, value in (
        ("PGHOST", url.host),
        ("PGPORT", str(url.port) if url.port else None),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password if isinstance(url.password, str) else None),
        ("PGDATABASE", url.database),
    ):
        if value:
            env[key] = value
    for param, var in _QUERY_ENV.items():
        given = url.query.get(param)
        if isinstance(given, str):
            env[var] = given
    return env


def client_major(tool: str) -> int:
    """Major version of a PostgreSQL client program."""
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    if out.returncode != 0 or match is None:
        raise ToolError(f"cannot tell the version of {tool}: {out.stderr.strip() or out.stdout}")
    return int(match.group(1))


def check_client_version(tool: str, conn: Connection) -> None:
    """Refuse a client older than the server (pg_dump refuses it too, less clearly)."""
    server = int(conn.exec_driver_sql("SHOW server_version_num").scalar_one()) // 10000
    client = client_major(tool)
    if client < server:
        raise ToolError(
            f"{Path(tool).name} {client} is older than the PostgreSQL {server} server: "
            f"install the version {server} client or point {BIN_SETTING} at it"
        )


def run(args: list[str], url: URL, what: str) -> subprocess.CompletedProcess[str]:
    """Run a client program; a non-zero exit raises :class:`ToolError` with its first error."""
    result = subprocess.run(args, env=libpq_env(url), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ToolError(f"{what} failed: {first_error(result.stderr)}")
    return result


def first_error(stderr: str) -> str:
    """The most telling line of a client program's stderr, with URLs masked."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() or "fatal" in line.lower():
            return mask_urls(line)
    return mask_urls(lines[0]) if lines else "no error message"
