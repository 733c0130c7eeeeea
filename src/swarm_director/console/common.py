"""What the console's pages share: the blueprint, query-string parsing, keyset paging links,
and the link to the API call behind each page."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

from flask import Blueprint, current_app, render_template, request, url_for

from swarm_director.errors import ValidationError
from swarm_director.schemas.common import MAX_ID
from swarm_director.schemas.filters import FilterModel
from swarm_director.store import Page
from swarm_director.store.filtering import parse_filter

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/ui",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

E = TypeVar("E", bound=StrEnum)
F = TypeVar("F", bound=FilterModel)
#: Longest free-text filter accepted (search words, session ids, user ids).
MAX_TEXT = 200
PAGE_SIZE = 50


def bad_param(name: str, problem: str) -> ValidationError:
    """The error a page answers with (400) for a query parameter it cannot use."""
    return ValidationError(f"invalid {name}: {problem}", details={"fields": {name: problem}})


def int_arg(name: str) -> int | None:
    """A positive id from the query string (None when absent or empty)."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_ID:
        raise bad_param(name, f"must be a whole number from 1 to {MAX_ID}")
    return int(raw)


def enum_arg(name: str, enum: type[E]) -> E | None:
    """A value of ``enum`` from the query string (None when absent or empty)."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return enum(raw)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise bad_param(name, f"must be one of {allowed}") from None


def text_arg(name: str) -> str | None:
    """A short free-text value from the query string (None when absent or blank)."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if len(raw) > MAX_TEXT or "\x00" in raw:
        raise bad_param(name, f"must be at most {MAX_TEXT} characters of text")
    return raw


def filter_args(model: type[F], **more: Any) -> F:
    """The filters of a listing (a model of :mod:`swarm_director.schemas.filters`) read from
    the query string by their names (blank ones left out), with ``more`` (e.g. the task of
    the path): the API's rules and errors, one definition. ValidationError names a bad one."""
    raw = {name: request.args.get(name, "").strip() for name in model.filter_names()}
    return parse_filter(model, {**{k: v for k, v in raw.items() if v}, **more})


@dataclass(frozen=True)
class Paged:
    """The rows of a newest-first page and the links to the older and newer pages."""

    items: list[Any]
    older: str | None
    newer: str | None
    first: str | None
    """The newest page, when this is not it."""


def newest_first(fetch: Callable[[Literal["asc", "desc"], str | None], Page[Any]]) -> Paged:
    """One newest-first page chosen by ``?after=`` (older) or ``?before=`` (newer) cursors.

    ``fetch(order, cursor)`` runs the store's list function. A newer page is fetched oldest
    first from its cursor and shown reversed, so paging either way never counts rows.
    """
    before, after = request.args.get("before"), request.args.get("after")
    if before and after:
        raise bad_param("before", "give before or after, not both")
    if before:
        page = fetch("asc", before)
        items, older, newer = list(reversed(page.items)), page.prev_cursor, page.next_cursor
    else:
        page = fetch("desc", after or None)
        items, older, newer = page.items, page.next_cursor, page.prev_cursor
    paging = bool(before or after)
    return Paged(
        items,
        here(after=older, before=None) if older else None,
        here(before=newer, after=None) if newer else None,
        here(before=None, after=None) if paging else None,
    )


def here(**changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one). A query
    parameter named like one of the path's (``/ui/tasks/1?task_id=5``) is left out: the
    path names the row, and no page reads such a parameter."""
    path_args = request.view_args or {}
    args: dict[str, Any] = {
        key: value for key, value in request.args.items() if value != "" and key not in path_args
    }
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    assert request.endpoint is not None
    return url_for(request.endpoint, **path_args, **args)


def api_url(path: str, **params: Any) -> str:
    """An API URL with the given non-empty query parameters."""
    from urllib.parse import urlencode

    query = urlencode({k: v for k, v in params.items() if v is not None and v != ""})
    return f"{path}?{query}" if query else path


def render(template: str, *, title: str, api: Iterable[str] = (), **context: Any) -> str:
    """A console page: ``api`` lists the API calls that return its data."""
    return render_template(template, title=title, api_links=list(api), **context)


@functools.cache
def _stream_rule_exists(rules: tuple[str, ...]) -> bool:
    return any(r.startswith("/api/tasks/") and r.endswith("/logs/stream") for r in rules)


def live_stream_url(task_id: int) -> str | None:
    """The live-tail endpoint of a task's logs, if this server has one (else None, and the
    page stays static: the script never asks for an endpoint that is not there)."""
    rules = tuple(sorted(rule.rule for rule in current_app.url_map.iter_rules()))
    if not _stream_rule_exists(rules):
        return None
    return f"/api/tasks/{task_id}/logs/stream"


def pretty_json(value: Any) -> str:
    """A JSON document indented for reading (escaped by the template like any text)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def when(value: datetime | None) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM:SSZ`` (UTC), or an em dash."""
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%SZ")


def iso(value: datetime | None) -> str:
    """A timestamp for ``<time datetime=...>``."""
    return value.isoformat() if value is not None else ""


def size(n: int | None) -> str:
    """Bytes in words (KiB, MiB, GiB)."""
    if n is None:
        return "—"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def enum_value(value: Any) -> str:
    """An enum member's value (plain values as text)."""
    return str(getattr(value, "value", value))


bp.add_app_template_filter(enum_value, "ev")
bp.add_app_template_global(here, "here")
bp.add_app_template_filter(pretty_json, "pretty_json")
bp.add_app_template_filter(when, "when")
bp.add_app_template_filter(iso, "iso")
bp.add_app_template_filter(size, "size")
