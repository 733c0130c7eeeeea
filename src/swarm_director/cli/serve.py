"""``swarm-director serve``: the API under gunicorn, a production WSGI server."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

import click
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from swarm_director.cli.common import database_option, settings_for
from swarm_director.cli.main import cli
from swarm_director.config import Settings
from swarm_director.db import Database
from swarm_director.db.provision import create_database, database_exists
from swarm_director.errors import SchemaError
from swarm_director.redact import masked_url

WSGIApp = Callable[..., Any]


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """gunicorn run in-process with options from code instead of its own command line."""

    def __init__(self, load_app: Callable[[], WSGIApp], options: Mapping[str, Any]) -> None:
        self._load_app = load_app
        self._options = dict(options)
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> WSGIApp:
        # Called in each worker after the fork, so every worker gets its own engine and pool.
        return self._load_app()


class StreamingThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's ``gthread`` worker, which also ends open log streams on SIGTERM.

    Threads rather than sync workers: a live log stream holds its thread for minutes, and a
    sync worker has one. Idle kept-alive connections wait in the worker's poller, not in a
    thread. Without the shutdown signal open streams would hold a stopping worker for the
    whole graceful timeout.
    """

    def init_process(self) -> None:
        # Resolved here, after the fork and before gunicorn installs the signal handlers: an
        # import inside a handler runs whenever the signal lands, also while the worker is
        # still importing the app, and then fails on a half-initialised module.
        from swarm_director.api.streams import begin_shutdown

        self._end_streams = begin_shutdown
        super().init_process()

    def handle_exit(self, sig: int, frame: Any) -> None:
        self._end_streams()
        super().handle_exit(sig, frame)

    def handle_quit(self, sig: int, frame: Any) -> None:
        """SIGQUIT, which the master sends its workers on Ctrl-C (SIGINT): stop as on SIGTERM.

        gunicorn's own quick stop raises SystemExit from the signal handler, in whatever the
        main thread is doing; inside a garbage-collector callback Python prints it as
        "Exception ignored ... Traceback" into the server's log. Here the worker stops
        accepting, ends its streams and lets requests in flight finish (the master kills it
        after ``graceful_timeout`` otherwise).
        """
        self.handle_exit(sig, frame)
        self.cfg.worker_int(self)


#: Seconds an idle client connection is kept open for its next request (clients should drop
#: theirs sooner: swarm_director.client does after 4 s).
KEEPALIVE_S = 10
#: Threads of each worker that open log streams can never take: with every stream slot held,
#: this many requests are still served at once (health checks, writes, lists).
REQUEST_THREADS = 4


def check_threads(threads: int, settings: Settings) -> None:
    """Raise ClickException when ``threads`` per worker would let open log streams and
    exports (at most ``SWARM_STREAM_MAX_CLIENTS`` and ``SWARM_EXPORT_MAX_CLIENTS`` per
    process, each holding a thread) starve other requests."""
    long_ones = settings.stream_max_clients + settings.export_max_clients
    least = long_ones + REQUEST_THREADS
    if threads < least:
        raise click.ClickException(
            f"--threads {threads} is too few: open log streams and exports may take "
            f"{long_ones} threads of each worker (SWARM_STREAM_MAX_CLIENTS="
            f"{settings.stream_max_clients}, SWARM_EXPORT_MAX_CLIENTS="
            f"{settings.export_max_clients}) and {REQUEST_THREADS} must stay for other "
            f"requests; use --threads {least} or more, or lower those limits"
        )


def bind_address(host: str, port: int) -> str:
    """``host:port`` as gunicorn expects it (IPv6 literals in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def run_gunicorn(
    load_app: Callable[[], WSGIApp],
    *,
    host: str,
    port: int,
    workers: int,
    threads: int = 32,
    access_log: bool = False,
) -> None:
    """Serve the app ``load_app`` builds (once per worker) until interrupted: ``workers``
    processes of ``threads`` threads each (see :class:`StreamingThreadWorker`)."""
    options = {
        "bind": bind_address(host, port),
        "workers": workers,
        "worker_class": StreamingThreadWorker,
        "threads": threads,
        "keepalive": KEEPALIVE_S,
        "proc_name": "swarm-director",
        "errorlog": "-",
        "accesslog": "-" if access_log else None,
        "graceful_timeout": 10,
        # No gunicornc control socket: nothing here uses it, and a fixed path in $HOME would
        # be shared by every server on the machine.
        "control_socket_disable": True,
    }
    _Gunicorn(load_app, options).run()


def prepare_database(settings: Settings) -> str:
    """Make sure the schema is at head before serving; returns what was done, in words.

    The embedded SQLite default is created and migrated on the spot (zero set-up). Any other
    database is left alone: below head it is an error naming the command to run.
    """
    from swarm_director.migrations import migrate

    url = settings.resolved_url()
    shown = masked_url(url)
    head = migrate.head_revision()
    if settings.is_embedded_default:
        created = create_database(url)
        database = Database.from_settings(settings)
        try:
            before = migrate.current_revision(database.engine)
            if before != head:
                migrate.upgrade(database.engine, "head")
        finally:
            database.dispose()
        if created or before is None:
            return f"Created the embedded database {shown} at schema {head}."
        if before != head:
            return f"Upgraded the embedded database {shown} from {before} to {head}."
        return f"Using the embedded database {shown} (schema {head})."
    if not database_exists(url):
        raise SchemaError(f"database {shown} does not exist; run `swarm-director db init` first")
    database = Database.from_settings(settings)
    try:
        at_head = migrate.is_at_head(database.engine)
        current = migrate.current_revision(database.engine)
    finally:
        database.dispose()
    if not at_head:
        raise SchemaError(
            f"the schema of {shown} is at {current or 'no revision'}, head is {head}; "
            "run `swarm-director db upgrade` first"
        )
    return f"Using {shown} (schema {head})."


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes.",
)
@click.option(
    "--threads",
    default=32,
    show_default=True,
    type=click.IntRange(1, 1024),
    help="Threads per worker: requests and open log streams served at once by each; at least "
    f"SWARM_STREAM_MAX_CLIENTS + {REQUEST_THREADS}.",
)
@click.option("--access-log", is_flag=True, help="Log every request to stderr.")
@database_option
def serve_cmd(
    host: str, port: int, workers: int, threads: int, access_log: bool, database_url: str | None
) -> None:
    """Run the REST API under gunicorn (a production WSGI server).

    On the embedded SQLite default the database is created and migrated on first start; any
    other database must already be at the newest schema (`swarm-director db upgrade`).
    Set SWARM_API_TOKEN (at least 16 characters) to require `Authorization: Bearer <token>`
    on every endpoint but /api/health.

    \b
    Example:
      swarm-director serve                      # http://127.0.0.1:5000/api/health
      SWARM_API_TOKEN=$(openssl rand -hex 32) swarm-director serve --host 0.0.0.0 --workers 4
    """
    settings = settings_for(database_url)
    check_threads(threads, settings)
    click.echo(prepare_database(settings))
    if settings.replica_urls:
        shown = ", ".join(masked_url(url) for url in settings.replica_urls)
        click.echo(
            f"Read-only requests go to the replicas {shown} while they are at most "
            f"{settings.replica_max_lag_s:g} s behind (else to the primary)."
        )
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    if not _is_loopback(host) and not token:
        click.echo(
            f"Warning: listening on {host} without SWARM_API_TOKEN: anyone who can reach this "
            "address can read and change the data.",
            err=True,
        )
    scheme_host = bind_address(host, port)
    click.echo(
        f"Serving the API at http://{scheme_host}/api ({workers} workers x {threads} threads); "
        "Ctrl+C stops."
    )
    app_config = {"DATABASE_URL": database_url} if database_url else None

    def load_app() -> WSGIApp:
        from swarm_director.web.app import create_app

        return create_app(app_config)

    run_gunicorn(
        load_app, host=host, port=port, workers=workers, threads=threads, access_log=access_log
    )
