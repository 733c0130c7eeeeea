"""The application factory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, json
from flask_openapi3.models.info import Info
from flask_openapi3.openapi import OpenAPI
from werkzeug.routing import IntegerConverter

from swarm_director import __version__
from swarm_director.api import context, errors, guards
from swarm_director.config import Settings
from swarm_director.db import Database
from swarm_director.ops import timing
from swarm_director.ops.timing import StatementTimings

_SETTING_KEYS = frozenset(
    field.alias for field in Settings.model_fields.values() if field.alias is not None
)

_DESCRIPTION = """\
The persistence service of SwarmDirector: agents, tasks and their logs, drafts, emails and
conversations. Lists are keyset-paginated (`limit`, `cursor` → `next_cursor`). Every error has
the shape `{"error": {"code", "message", "details"}}`. When the server has `SWARM_API_TOKEN`
set, every endpoint but `/api/health` needs `Authorization: Bearer <token>`.
"""


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
    """The Flask app serving the REST API under ``/api``.

    ``config`` overrides settings by their environment names (``DATABASE_URL``,
    ``SWARM_API_TOKEN``, ``SWARM_MAX_REQUEST_BYTES``, ...; ``None`` unsets one); every other key
    goes to ``app.config`` (e.g. ``TESTING``). The app's database engine is created lazily and
    closed with ``swarm_director.api.context.database(app).dispose()``.
    """
    overrides, flask_config = _split_config(config or {})
    settings = Settings(**overrides)
    app = OpenAPI(
        __name__,
        info=Info(title="SwarmDirector store", version=__version__, description=_DESCRIPTION),
        security_schemes={"bearerAuth": {"type": "http", "scheme": "bearer"}},
        validation_error_status=422,
        validation_error_model=errors.ErrorResponse,
        validation_error_callback=errors.validation_error_response,
        doc_ui=False,  # the document is served at /api/openapi.json below; no UI bundled
    )
    app.config.update(flask_config)
    app.url_map.converters["int"] = AsciiIntConverter

    db = Database.from_settings(settings)
    # On by default: a bounded per-shape record of the slowest statements, snapshotted where
    # `swarm-director db stats` (and /api/admin/stats) read it.
    StatementTimings(directory=timing.default_directory(settings.data_dir)).install(db.engine)
    context.init_app(app, settings, db)
    errors.init_app(app)
    guards.init_app(app)
    _register_resources(app)

    def openapi_document() -> Response:
        return Response(json.dumps(app.api_doc), mimetype="application/json")

    app.add_url_rule("/api/openapi.json", "openapi_document", openapi_document)
    return app


def _register_resources(app: OpenAPI) -> None:
    from swarm_director.api import (
        agents,
        conversations,
        drafts,
        emails,
        health,
        logs,
        streams,
        tasks,
    )

    streams.init_app(app)
    for module in (health, agents, tasks, logs, streams, drafts, emails, conversations):
        app.register_api(module.bp)
    app.register_api(health.admin)
