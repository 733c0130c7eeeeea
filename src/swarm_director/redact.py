"""How errors and database URLs are shown to people: one line, passwords masked.

Every message that reaches a terminal, a log or an HTTP response goes through these helpers,
so that a driver's multi-line error (with the SQL and parameters SQLAlchemy appends) or a URL
with a password in it is shortened and masked the same way everywhere.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import URL, make_url

_URL_IN_TEXT = re.compile(r"[A-Za-z][\w+.-]*://\S+")


def first_line(error: BaseException | str, *, fallback: str | None = None) -> str:
    """The first non-blank line of an error (its driver error when it wraps one), stripped.

    An exception with no text gives ``fallback`` (default: the exception's class name).
    """
    if isinstance(error, BaseException):
        orig = getattr(error, "orig", None)  # a DBAPIError's driver error, without the SQL
        source = orig if isinstance(orig, BaseException) else error
        text = str(source)
        default = fallback or type(source).__name__
    else:
        text, default = error, fallback or "unknown error"
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return default


def masked_url(url: URL | str) -> str:
    """The URL as text with any password replaced by ``***``."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except Exception:
            return "<invalid URL>"
    return url.render_as_string(hide_password=True)


def mask_urls(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""

    def _mask(match: re.Match[str]) -> str:
        found = match.group(0)
        masked = masked_url(found)
        return found if masked == "<invalid URL>" else masked

    return _URL_IN_TEXT.sub(_mask, text)
