"""Free-form JSON on console pages: a short preview on the page, the whole document one link
away.

A row's ``metadata`` (or an agent's ``config``) may be up to SWARM_MAX_JSON_BYTES; fifty of
them in full would make a page of megabytes (the console's pages stay under 200 kB). A page
shows the first :data:`PREVIEW_BYTES` of each, counted on the escaped HTML it sends, and links
to a route that answers the row's document as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Response, json
from markupsafe import escape

from swarm_director.console.common import bp, pretty_json
from swarm_director.store import agents, browse, conversations
from swarm_director.web.context import session

#: Most bytes of escaped HTML one document's preview takes on a page.
PREVIEW_BYTES = 2048


@dataclass(frozen=True)
class Preview:
    """The text of a document to show, and whether it is only the beginning of it."""

    text: str
    cut: bool
    total_chars: int


def _html_bytes(text: str) -> int:
    return len(str(escape(text)).encode())


def json_preview(document: Any, limit: int = PREVIEW_BYTES) -> Preview:
    """``document`` indented for reading, cut so that its escaped HTML is at most ``limit``
    bytes (quotes and markup grow up to five times when escaped, so the cut is found on the
    escaped size, not on characters)."""
    text = pretty_json(document)
    if _html_bytes(text) <= limit:
        return Preview(text, False, len(text))
    chars = limit
    while chars > 0:
        size = _html_bytes(text[:chars])
        if size <= limit:
            break
        chars = min(chars - 1, chars * limit // size)
    return Preview(text[:chars], True, len(text))


def _json(document: Any) -> Response:
    # The document as stored (null when the row has none), for reading or saving.
    return Response(json.dumps(document, ensure_ascii=False), mimetype="application/json")


@bp.get("/logs/<int:log_id>/metadata")
def log_metadata(log_id: int) -> Response:
    """A log record's metadata as JSON."""
    return _json(browse.log_record(session(), log_id).meta)


@bp.get("/messages/<int:message_id>/metadata")
def message_metadata(message_id: int) -> Response:
    """A message's metadata as JSON."""
    return _json(conversations.get_message(session(), message_id).meta)


@bp.get("/conversations/<int:conversation_id>/metadata")
def conversation_metadata(conversation_id: int) -> Response:
    """A conversation's metadata as JSON."""
    return _json(conversations.get_conversation(session(), conversation_id).meta)


@bp.get("/agents/<int:agent_id>/config")
def agent_config(agent_id: int) -> Response:
    """An agent's config as JSON."""
    return _json(agents.get_agent(session(), agent_id).config)


bp.add_app_template_global(json_preview, "json_preview")
