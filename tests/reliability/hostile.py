"""Hostile values shared by the input tests: strategies for Hypothesis and fixed lists."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from swarm_director import enums
from swarm_director.schemas.common import MAX_ID

#: Strings that break naive code: SQL, paths, markup, control and odd Unicode characters.
HOSTILE_TEXT = [
    "",
    " ",
    "'",
    '"',
    "' OR '1'='1",
    "1; DROP TABLE agents; --",
    "1' UNION SELECT * FROM agents --",
    "%",
    "%%",
    "%s",
    "_",
    "\\",
    "../../../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/dev/zero",
    "<script>alert(1)</script>",
    "{{7*7}}",
    "${jndi:ldap://x}",
    "a\u0000b",
    "\u0000",
    "\r\nSet-Cookie: x=1",
    "\u202e\u0644\u0627",
    "\U0001f600" * 3,
    "\ufeff",
    "NaN",
    "Infinity",
    "-1",
    "0",
    "9" * 40,
    "x" * 10_001,
]

#: Numbers outside what a column or an id can hold, and non-finite floats.
HOSTILE_NUMBERS: list[Any] = [
    0,
    -1,
    2**31,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    10**40,
    1.5,
    float("nan"),
    float("inf"),
    float("-inf"),
    1e308,
    True,
]

ENUM_VALUES = sorted(
    {
        member.value
        for name in dir(enums)
        if isinstance(kind := getattr(enums, name), type) and issubclass(kind, enums.StrEnum)
        for member in kind
    }
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(HOSTILE_TEXT),
    st.sampled_from(HOSTILE_NUMBERS),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
#: Values that often are valid for some field (so that inputs also get past validation).
plausible = st.one_of(
    st.sampled_from(ENUM_VALUES),
    st.integers(min_value=1, max_value=3),
    st.text(alphabet="abcxyz ", min_size=1, max_size=12),
    st.sampled_from(["someone@example.com", "a@b.example"]),
    st.lists(st.sampled_from(["x@y.example", "plan", "write"]), max_size=2),
    st.dictionaries(
        st.sampled_from(["k", "n"]), st.integers(0, 5) | st.text(max_size=4), max_size=2
    ),
    st.datetimes().map(lambda d: d.isoformat()),
)
values = st.one_of(plausible, plausible, json_values)

#: Row ids as the API hands them to the store (path ids are validated as ``PositiveId``):
#: real ones, missing ones, zero and negatives.
ids = st.one_of(
    st.integers(min_value=1, max_value=3),
    st.integers(min_value=-(2**31), max_value=MAX_ID),
)


def bodies(fields: list[str]) -> st.SearchStrategy[Any]:
    """Mostly dicts over ``fields`` (plus an unknown key now and then); sometimes any JSON."""
    known = st.fixed_dictionaries({}, optional=dict.fromkeys(fields, values))
    with_extra = st.builds(lambda d, v: {**d, "unexpected": v}, known, values)
    return st.one_of(known, known, known, with_extra, json_values)


#: Valid ISO 8601 texts whose time in UTC is outside years 1..9999 (a datetime overflows).
OVERFLOWING_TIMESTAMPS = [
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999999-00:01",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00+00:01",
]

#: ``next`` targets of the console login that break a Location header or leave the console.
HOSTILE_NEXT = [
    "/ui/\r\nSet-Cookie: x=1",
    "/ui/%0d%0aSet-Cookie:x",
    "/ui/tasks\nLocation: https://evil.example/",
    "/ui/\x00",
    "/ui/\u2028x",
    "/ui/ x",
    "//evil.example/ui/",
    "https://evil.example/ui/",
    "/ui\\..\\x",
]


def huge_documents(max_items: int, max_bytes: int) -> dict[str, Any]:
    """Free-form JSON documents past each limit, by name: too many tiny values (a flood of
    ``{}``), too many nested ones, too many bytes in one string, and too many bytes of
    escapes (each ``\\u0000``-free quote doubles when encoded)."""
    return {
        "many_empty_objects": {"a": [{}] * (max_items + 1)},
        "many_nested": {"a": [[0]] * (max_items // 2 + 1)},
        "long_string": {"a": "x" * (max_bytes + 1)},
        "many_quotes": {"a": '"' * (max_bytes // 2 + 1)},
    }
