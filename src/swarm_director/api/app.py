"""The application factory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Response, json, request
from flask_openapi3.models.info import Info
from flask_openapi3.openapi import OpenAPI
from werkzeug.routing import IntegerConverter

from swarm_director import __version__, console
from swarm_director.api import actors, auth, context, errors, guards
from swarm_director.config import Settings, make_settings
from swarm_director.db import Database
from swarm_director.ops.stats.timings import StatementTimings

_SETTING_KEYS = frozenset(
    field.alias for field in Settings.model_fields.values() if field.alias is not None
)

_DESCRIPTION = """\
The persistence service of SwarmDirector: agents, tasks and their logs, drafts, emails and
conversations. Lists are keyset-paginated (`limit`, `cursor` → `next_cursor`). Every error has
the shape `{"error": {"code", "message", "details"}}`. When the server has `SWARM_API_TOKEN`
set or API keys exist, every endpoint but `/api/health` needs `Authorization: Bearer <token>`:
an API key (`swarm-director keys create`) or the bootstrap token. Scopes: `read` (every GET,
this document included), `write` (read, plus every change and log ingest), `admin`
(everything, `/api/admin/*` included); each operation names its scope. 401: missing,
unknown, revoked or expired key; 403: a key without the scope; 429 (with `Retry-After`): too
many failed tokens from the client's address or for the key id. Responses carry
`Cache-Control: no-store` (live streams: `no-cache`).
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
    """The Flask app serving the REST API under ``/api`` and the web console under ``/ui``.

    ``config`` overrides settings by their environment names (``DATABASE_URL``,
    ``SWARM_API_TOKEN``, ``SWARM_MAX_REQUEST_BYTES``, ...; ``None`` unsets one); every other key
    goes to ``app.config`` (e.g. ``TESTING``). The app's database engine is created lazily and
    closed with ``swarm_director.api.context.database(app).dispose()``. Raises ConfigError
    naming the setting when one is invalid (e.g. a token shorter than 16 characters).
    """
    overrides, flask_config = _split_config(config or {})
    settings = make_settings(overrides)
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
    # On by default: a bounded per-shape record of the slowest statements, merged into the
    # database's statement_timings table off the request path (db stats reads it).
    if settings.timings:
        timings = StatementTimings(
            keep=settings.timings_keep, flush_every_s=settings.timings_flush.total_seconds()
        )
        timings.install(db.engine)
        db.on_dispose(timings.stop)
    context.init_app(app, settings, db)
    errors.init_app(app)
    guards.init_app(app)
    actors.init_app(app)  # after the guards: the principal is known
    _register_resources(app)
    console.init_app(app, settings)
    app.after_request(_response_headers)

    def openapi_document() -> Response:
        return Response(json.dumps(_with_scopes(app.api_doc)), mimetype="application/json")

    app.add_url_rule("/api/openapi.json", "openapi_document", openapi_document)
    return app


def _response_headers(response: Response) -> Response:
    # Redirects name this server by path only: an absolute URL would be built from the
    # request's Host header, which the client chooses (Werkzeug's slash redirects do that).
    location = response.headers.get("Location")
    if location:
        parts = urlsplit(location)
        if parts.netloc and parts.netloc == request.host:
            response.headers["Location"] = urlunsplit(("", "", parts.path or "/", *parts[3:]))
    # API answers are per caller and often secret: no cache keeps them (streams say no-cache).
    path = auth.normal_path(request.path)
    if path == "/api" or path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _with_scopes(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with each secured operation's scope, taken from the rule the guard enforces
    (:func:`~swarm_director.api.auth.required_scope`): in ``security`` (OpenAPI 3.1 lets an
    HTTP scheme list roles), as ``x-required-scope``, and in words in the description."""
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or not operation.get("security"):
                continue
            scope = auth.required_scope(method, path).value
            operation["security"] = [{"bearerAuth": [scope]}]
            operation["x-required-scope"] = scope
            note = f"Requires an API key with scope `{scope}` (or higher)."
            description = operation.get("description") or ""
            if note not in description:
                operation["description"] = f"{description}\n\n{note}".strip()
    return doc


def _register_resources(app: OpenAPI) -> None:
    from swarm_director.api import (
        agents,
        conversations,
        drafts,
        emails,
        health,
        history,
        logs,
        queue,
        streams,
        tasks,
    )

    streams.init_app(app)
    queue.init_app(app)
    # queue before tasks: /tasks/claim and /tasks/dead are not task ids
    modules = (health, agents, queue, tasks, logs, streams, drafts, emails, conversations, history)
    for module in modules:
        app.register_api(module.bp)
    app.register_api(health.admin)
