"""The application factory: the one place where the API and the console are put together."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Response, request
from flask_openapi3.openapi import OpenAPI
from werkzeug.routing import IntegerConverter

from swarm_director import api, console
from swarm_director.api import document
from swarm_director.config import Settings, make_settings
from swarm_director.db import Database
from swarm_director.ops.rollup_fold import RollupFolder
from swarm_director.ops.stats.timings import StatementTimings
from swarm_director.web import actors, context, errors

_SETTING_KEYS = frozenset(
    field.alias for field in Settings.model_fields.values() if field.alias is not None
)


class AsciiIntConverter(IntegerConverter):
    """``<int:...>`` path segments of ASCII digits only. Werkzeug's ``\\d+`` also matches the
    digits of other scripts, which ``int()`` accepts: ``/api/agents/\\u0661`` (an Arabic-Indic
    one) was agent 1."""

    regex = r"[0-9]+"


def _split_config(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    overrides = {key: value for key, value in config.items() if key in _SETTING_KEYS}
    flask_config = {key: value for key, value in config.items() if key not in _SETTING_KEYS}
    return overrides, flask_config


def create_app(config: Mapping[str, Any] | None = None) -> OpenAPI:
    """The Flask app serving the REST API under ``/api`` and the web console under ``/ui``.

    ``config`` overrides settings by their environment names (``DATABASE_URL``,
    ``SWARM_API_TOKEN``, ``SWARM_MAX_REQUEST_BYTES``, ...; ``None`` unsets one); every other key
    goes to ``app.config`` (e.g. ``TESTING``). The app's database engine is created lazily and
    closed with ``swarm_director.web.context.database(app).dispose()``. Raises ConfigError
    naming the setting when one is invalid (e.g. a token shorter than 16 characters).
    """
    overrides, flask_config = _split_config(config or {})
    settings = make_settings(overrides)
    # flask-openapi3's app: the API's routes are what its document describes.
    app = OpenAPI(__name__, **document.app_options())
    app.config.update(flask_config)
    app.url_map.converters["int"] = AsciiIntConverter

    db = Database.from_settings(settings)
    # On by default: a bounded per-shape record of the slowest statements, merged into the
    # database's statement_timings table off the request path (db stats reads it).
    if settings.timings:
        timings = StatementTimings(
            keep=settings.timings_keep, flush_every_s=settings.timings_flush.total_seconds()
        )
        timings.install(db.engine)
        db.on_dispose(timings.stop)
    if settings.rollup_fold:
        # Started by the first request: in a forking server, in each worker.
        folder = RollupFolder(db.engine, settings.rollup_fold.total_seconds())
        app.before_request(folder.ensure_started)
        db.on_dispose(folder.stop)
    context.init_app(app, settings, db)
    errors.init_app(app)
    api.init_app(app)
    actors.init_app(app)  # after the API's guards: the principal is known
    console.init_app(app, settings)
    app.after_request(_relative_redirects)
    return app


def _relative_redirects(response: Response) -> Response:
    # Redirects name this server by path only: an absolute URL would be built from the
    # request's Host header, which the client chooses (Werkzeug's slash redirects do that).
    location = response.headers.get("Location")
    if location:
        parts = urlsplit(location)
        if parts.netloc and parts.netloc == request.host:
            response.headers["Location"] = urlunsplit(("", "", parts.path or "/", *parts[3:]))
    return response
