"""How errors and database URLs are shown to people: one line, passwords masked.

Every message that reaches a terminal, a log or an HTTP response goes through these helpers,
so that a driver's multi-line error (with the SQL and parameters SQLAlchemy appends) or a URL
with a password in it is shortened and masked the same way everywhere.

A URL carries a password in two places: its userinfo (``user:secret@host``) and its query,
whose parameters SQLAlchemy hands to the driver as libpq connection keywords
(``?password=secret``, ``?sslpassword=secret``). Both are masked; the keyword is matched in
any case, since a reader cannot tell which spelling a driver accepts.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import URL, make_url

MASK = "***"
#: Connection keywords whose value is a secret (libpq's; psycopg passes them on as given).
SECRET_KEYWORDS = frozenset({"password", "sslpassword"})

_URL_IN_TEXT = re.compile(r"[A-Za-z][\w+.-]*://\S+")
# For text a URL parser refuses: ``user:secret@`` after the scheme, and ``password=secret``.
_USERINFO_PASSWORD = re.compile(r"(://[^/?#@:\s]*:)[^/?#@\s]*(@)")
_SECRET_NAMES = "|".join(sorted(SECRET_KEYWORDS))
_QUERY_PASSWORD = re.compile(rf"([?&;](?:{_SECRET_NAMES})=)[^&;#\s]*", re.IGNORECASE)
# Stands in for a masked query value while SQLAlchemy renders the URL (it would quote "*").
_PLACEHOLDER = "swarmmaskedvalue0a1b2c3d"


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
    """The URL as text with every password (userinfo and query keywords) replaced by ``***``.

    Text that is not a URL gives ``<invalid URL>``: it is not shown, as it may hold a secret.
    """
    if isinstance(url, str):
        try:
            url = make_url(url)
        except Exception:
            return "<invalid URL>"
    secret = {key: _PLACEHOLDER for key in url.query if key.lower() in SECRET_KEYWORDS}
    shown = url.update_query_dict(secret) if secret else url
    return shown.render_as_string(hide_password=True).replace(_PLACEHOLDER, MASK)


def mask_urls(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""

    def _mask(match: re.Match[str]) -> str:
        found = match.group(0)
        masked = masked_url(found)
        if masked != "<invalid URL>":
            return masked
        return _QUERY_PASSWORD.sub(rf"\1{MASK}", _USERINFO_PASSWORD.sub(rf"\1{MASK}\2", found))

    return _URL_IN_TEXT.sub(_mask, text)
