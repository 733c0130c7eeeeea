"""The console's forms that change something: who may send them, and how they come back.

Every action is a POST from a form of a console page, checked by :func:`action` before the
view runs, in this order (the first refusal answers, with one plain message, and nothing is
changed):

1. the ``Origin`` header names this server (a browser always sends it with a form POST; a
   page of another site cannot forge it) — else 403;
2. the form carries the session's CSRF token (``csrf``) — else 403;
3. the session's key has the scope the same API call needs (``write`` for tasks, agents and
   drafts, ``admin`` for keys and backups) — else 403.

The view then runs as the key's name (:func:`swarm_director.db.actor.acting_as`), so the
history names who did it, through the same store function the API calls, in the request's
one transaction: an error (a stale page, a refused status change, bad input) answers 4xx and
rolls it back. Destructive actions ask first (:func:`confirm_first`): the form comes back as
a page that repeats it with a confirm button, without JavaScript. Success answers 303 to the
page the form was on, with the outcome shown once (Flask's flashed messages).

The cookie stays ``SameSite=Strict``: the checks above hold even for a browser that ignores it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import abort, flash, g, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from swarm_director.console import auth
from swarm_director.console.common import bp, render
from swarm_director.db.actor import acting_as
from swarm_director.enums import ApiScope
from swarm_director.errors import ValidationError
from swarm_director.schemas.common import MAX_ID
from swarm_director.store.preconditions import stamp

E = TypeVar("E", bound=StrEnum)
V = TypeVar("V", bound=Callable[..., Any])
#: Longest reason, note or name a form field takes (what the API's ShortText allows is more;
#: a person types less).
MAX_FIELD = 2000
#: The form fields the guard and the confirmation use, never repeated as data.
_OWN_FIELDS = frozenset({"csrf", "confirmed"})

FOREIGN_ORIGIN = (
    "This form was not sent from a page of this server (its Origin header is missing or names "
    "another site). Nothing was changed."
)
STALE_FORM = (
    "This form expired or was not made for this session (its security token does not match). "
    "Reload the page and try again. Nothing was changed."
)


def origin_ok() -> bool:
    """True when the request's ``Origin`` is this server's (the host and port the browser
    sent the request to; the scheme is left out, since a proxy may end TLS in front)."""
    origin = request.headers.get("Origin", "")
    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == request.host and not parts.path


def actor_name() -> str:
    """Who the history names for the session's actions: its key's name (``bootstrap`` for
    the token; ``anonymous`` when the service runs without authentication, as in the API)."""
    principal = auth.current_principal()
    if principal is None or principal is auth.ANYONE:
        return "anonymous"
    return principal.name


def refuse_unless_allowed(scope: ApiScope) -> None:
    """Abort with 403 unless the request is a form of this server, for this session, from a
    key with ``scope`` (see the module's docstring for the order)."""
    if not origin_ok():
        abort(403, description=FOREIGN_ORIGIN)
    if not auth.csrf_ok():
        abort(403, description=STALE_FORM)
    if not auth.allows(scope):
        abort(
            403,
            description=f"This action needs a key with scope {scope.value}, as the same API call "
            "does; this session's key does not have it. Nothing was changed.",
        )


def action(scope: ApiScope) -> Callable[[V], V]:
    """Make a view a console action needing ``scope``: checked, then run as the key's name."""

    def wrap(view: V) -> V:
        @functools.wraps(view)
        def run(**kwargs: Any) -> Any:
            refuse_unless_allowed(scope)
            with acting_as(actor_name(), g.get("_sd_request_id")):
                return view(**kwargs)

        return run  # type: ignore[return-value]

    return wrap


def confirm_first(
    question: str, button: str, back: str, extra: dict[str, str] | None = None
) -> str | None:
    """The confirmation page for a destructive action, when the form has not confirmed yet
    (None once it has): the same form again, its fields hidden (with ``extra`` ones), with
    ``button`` to go on."""
    if request.form.get("confirmed") == "yes":
        return None
    more = extra or {}
    fields = [
        (k, v) for k, v in request.form.items(multi=True) if k not in _OWN_FIELDS and k not in more
    ]
    fields += list(more.items())
    return render(
        "confirm.html",
        title="Please confirm",
        question=question,
        button=button,
        fields=fields,
        back=back,
    )


def done(message: str, back: str) -> BaseResponse:
    """Success: show ``message`` once on the page at ``back`` (a console path)."""
    flash(message)
    return redirect(auth.safe_next(back), 303)


def back_to(default: str) -> str:
    """Where the form came from (its ``back`` field, a console path), else ``default``."""
    given = request.form.get("back", "")
    return given if given and auth.safe_next(given) == given else default


def bad_field(name: str, problem: str) -> ValidationError:
    """The error (422) of a form field the action cannot use, naming it in the message."""
    return ValidationError(f"invalid {name}: {problem}", details={"fields": {name: problem}})


def form_text(name: str, *, required: bool = True, limit: int = MAX_FIELD) -> str | None:
    """A text field, stripped (None when blank and not ``required``)."""
    raw = request.form.get(name, "").strip()
    if not raw:
        if required:
            raise bad_field(name, "must not be empty")
        return None
    if len(raw) > limit or "\x00" in raw:
        raise bad_field(name, f"must be at most {limit} characters of text")
    return raw


def form_id(name: str, *, required: bool = True) -> int | None:
    """A positive id field (None when blank and not ``required``)."""
    raw = request.form.get(name, "").strip()
    if not raw and not required:
        return None
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_ID:
        raise bad_field(name, f"must be a whole number from 1 to {MAX_ID}")
    return int(raw)


def form_enum(name: str, enum: type[E], allowed: tuple[E, ...] | None = None) -> E:
    """A value of ``enum`` (one of ``allowed`` when given)."""
    choices = allowed or tuple(enum)
    raw = request.form.get(name, "").strip()
    for member in choices:
        if raw == member.value:
            return member
    raise bad_field(name, "must be one of " + ", ".join(m.value for m in choices))


def seen() -> str:
    """The change stamp the page showed the row with (the ``seen`` field)."""
    raw = request.form.get("seen", "")
    if not raw or len(raw) > 64:
        raise bad_field("seen", "the form lacks the row's change stamp; reload the page")
    return raw


bp.add_app_template_filter(stamp, "stamp")
