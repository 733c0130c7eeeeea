"""The API's OpenAPI document: what the app is told about the API when it is built, and the
document served at ``/api/openapi.json`` with each operation's scope written in."""

from __future__ import annotations

from typing import Any

from flask import Response, json
from flask_openapi3.models.info import Info
from flask_openapi3.openapi import OpenAPI

from swarm_director import __version__
from swarm_director.web import auth, errors

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
`Cache-Control: no-store` (live streams: `no-cache`). With read replicas, a successful write
answers with `X-Swarm-LSN` (its commit position); a GET that sends it back sees that write
(else it may be served by a replica a little behind; a malformed one is a 422). 503 with
`Retry-After`: the database is unreachable or failing over; repeat after the given seconds.
"""


def app_options() -> dict[str, Any]:
    """Keyword arguments for flask-openapi3's ``OpenAPI`` app: the document's title, version
    and description, the bearer scheme, and request validation errors (422) in the one error
    shape."""
    return {
        "info": Info(title="SwarmDirector store", version=__version__, description=_DESCRIPTION),
        "security_schemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        "validation_error_status": 422,
        "validation_error_model": errors.ErrorResponse,
        "validation_error_callback": errors.validation_error_response,
        "doc_ui": False,  # the document is served at /api/openapi.json below; no UI bundled
    }


def with_scopes(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with each secured operation's scope, taken from the rule the guard enforces
    (:func:`~swarm_director.web.auth.required_scope`): in ``security`` (OpenAPI 3.1 lets an
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


def init_app(app: OpenAPI) -> None:
    """Serve the document at ``/api/openapi.json``."""

    def openapi_document() -> Response:
        return Response(json.dumps(with_scopes(app.api_doc)), mimetype="application/json")

    app.add_url_rule("/api/openapi.json", "openapi_document", openapi_document)
