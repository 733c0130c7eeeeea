"""A throwaway PostgreSQL primary and streaming standby, from Debian's server packages.

Each server lives in its own temporary folder, listens on a free loopback port and on a
socket in that folder, and is run as the ``postgres`` user when the tests run as root
(``initdb`` refuses root). The shared server on 5432 is never touched. Every wait is bounded.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from tests.serving import free_port

DATABASE = "swarm"


def pg_bin() -> Path | None:
    """The newest installed server's bin folder (None: no server package)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return Path(found[-1]).parent if found else None


def unavailable_reason() -> str | None:
    """None when primaries and standbys can be made here, else why not."""
    if pg_bin() is None:
        return "no PostgreSQL server package (/usr/lib/postgresql/*/bin/initdb)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a postgres user to run the servers as"
    return None


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _run(*args: str | Path, timeout: float = 60.0) -> str:
    command = [*_as_postgres(), *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _own_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(0o700)
    return path


@dataclass
class Server:
    """One PostgreSQL server in a temporary folder."""

    name: str
    root: Path
    port: int
    bin: Path
    running: bool = False
    extra_conf: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = DATABASE) -> URL:
        return URL.create(
            "postgresql+psycopg",
            username="postgres",
            host="127.0.0.1",
            port=self.port,
            database=database,
        )

    def url_text(self, database: str = DATABASE) -> str:
        return self.url(database).render_as_string(hide_password=False)

    def start(self) -> None:
        _run(
            self.bin / "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.root / "server.log",
            "-w",
            "-t",
            "60",
            "start",
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            _run(self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")
            self.running = False

    def promote(self) -> None:
        _run(self.bin / "pg_ctl", "-D", self.data, "-w", "-t", "60", "promote")

    def sql(self, statement: str, database: str = DATABASE) -> list[tuple[object, ...]]:
        """Rows of one statement, run in autocommit on a connection of its own."""
        engine = sa.create_engine(self.url(database), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                result = connection.exec_driver_sql(statement)
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            engine.dispose()

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def remove(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def write_conf(self, lines: list[str]) -> None:
        with (self.data / "postgresql.auto.conf").open("a") as conf:
            conf.write("".join(f"{line}\n" for line in lines))


def _settings(server: Server) -> list[str]:
    return [
        "listen_addresses = '127.0.0.1'",
        f"port = {server.port}",
        f"unix_socket_directories = '{server.root}'",
        f"cluster_name = '{server.name}'",
        "fsync = off",  # throwaway data: durability across an OS crash is not under test
        "wal_keep_size = '256MB'",
        "max_connections = 100",
        "shared_buffers = '32MB'",
        # Every statement in the log with its application_name: where reads ran is visible.
        "log_statement = 'all'",
        "log_line_prefix = '%m [%p] app=%a '",
    ]


def make_primary(name: str = "primary", extra: list[str] | None = None) -> Server:
    """An initialised, started primary with an empty database ``swarm``."""
    bin_dir = pg_bin()
    assert bin_dir is not None
    server = Server(name, _own_dir(f"sd-{name}-"), free_port(), bin_dir)
    try:
        _run(
            bin_dir / "initdb",
            "-D",
            server.data,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        server.write_conf(_settings(server) + (extra or []))
        server.start()
        server.sql(f"CREATE DATABASE {DATABASE}", database="postgres")
    except BaseException:
        server.remove()
        raise
    return server


def make_standby(primary: Server, name: str = "standby") -> Server:
    """A streaming standby of ``primary`` (``pg_basebackup -R``), started and replaying."""
    server = Server(name, _own_dir(f"sd-{name}-"), free_port(), primary.bin)
    try:
        _run(
            primary.bin / "pg_basebackup",
            "-D",
            server.data,
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "-d",
            f"host=127.0.0.1 port={primary.port} user=postgres application_name={name}",
        )
        server.write_conf(_settings(server))
        server.start()
        wait_until(
            lambda: bool(
                primary.sql(
                    "SELECT 1 FROM pg_stat_replication WHERE application_name = "
                    f"'{name}' AND state = 'streaming'",
                    database="postgres",
                )
            ),
            30,
            "streaming",
        )
    except BaseException:
        server.remove()
        raise
    return server


def wait_until(check: object, timeout: float, what: str) -> None:
    """Poll ``check()`` until it is true; TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception:  # a server still starting
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def replay_caught_up(primary: Server, standby: Server) -> bool:
    """Whether ``standby`` has replayed everything ``primary`` wrote so far."""
    (lsn,) = primary.sql("SELECT pg_current_wal_insert_lsn()::text")[0]
    rows = standby.sql(f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn")
    return bool(rows[0][0])


@dataclass
class Bouncer:
    """PgBouncer in front of one server, in transaction pooling mode."""

    root: Path
    port: int
    process: subprocess.Popen[bytes]

    def url(self, database: str = DATABASE) -> URL:
        return URL.create(
            "postgresql+psycopg",
            username="postgres",
            host="127.0.0.1",
            port=self.port,
            database=database,
        )

    def url_text(self, database: str = DATABASE) -> str:
        return self.url(database).render_as_string(hide_password=False)

    def log(self) -> str:
        path = self.root / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def remove(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def pgbouncer_bin() -> str | None:
    """PgBouncer's program (Debian package ``pgbouncer``), None when missing."""
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )


def start_pgbouncer(server: Server, *, pool_size: int = 10) -> Bouncer:
    """PgBouncer in transaction mode on a free port, for database ``swarm`` of ``server``."""
    program = pgbouncer_bin()
    assert program is not None
    root = _own_dir("sd-pgbouncer-")
    port = free_port()
    (root / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{DATABASE} = host=127.0.0.1 port={server.port} dbname={DATABASE} user=postgres\n"
        # The command line looks at the server's maintenance database too.
        f"* = host=127.0.0.1 port={server.port} user=postgres\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        "auth_type = any\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {pool_size}\nmax_client_conn = 200\n"
        f"logfile = {root}/pgbouncer.log\n"
        # The settings the docs recommend for this service (docs/scaling.md).
        "server_reset_query =\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
    )
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        for path in root.iterdir():
            os.chown(path, entry.pw_uid, entry.pw_gid)
    process = subprocess.Popen(
        [*_as_postgres(), program, str(root / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bouncer = Bouncer(root, port, process)
    try:
        wait_until(lambda: bouncer.process.poll() is None and _answers(bouncer), 20, "pgbouncer")
    except BaseException:
        bouncer.remove()
        raise
    return bouncer


def _answers(bouncer: Bouncer) -> bool:
    engine = sa.create_engine(bouncer.url(), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        engine.dispose()
