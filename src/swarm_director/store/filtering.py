"""How a listing's filter object (:mod:`swarm_director.schemas.filters`) narrows a statement.

Each store listing declares one :class:`FilterRules`: for every field of its filter model, the
column the value is compared with and how (equal by default). Declaring rules that miss a field
of the model, or name one it does not have, fails at import: a filter added to the schema
cannot be silently ignored by the store.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select
from sqlalchemy.orm import InstrumentedAttribute

from swarm_director.schemas.filters import FilterModel
from swarm_director.store._common import check_filter, validated

F = TypeVar("F", bound=FilterModel)
T = TypeVar("T")
Column = InstrumentedAttribute[Any]
#: A condition on a column for a value, e.g. ``operator.ge`` for "at or after".
Compare = Callable[[Column, Any], ColumnElement[bool]]
#: A rule: a column (equal to the value), or a column with its comparison.
Rule = Column | tuple[Column, Compare]
#: The rule of a filter the listing applies itself (full-text search: its own paging).
SEARCHED = None


def parse_filter(model: type[F], given: F | Mapping[str, Any] | None) -> F:
    """``given`` as a ``model`` filter (validated if a mapping; None: no filters). Raises
    ValidationError("invalid filter ...") naming each bad filter in ``details["fields"]``."""
    return validated(model, {} if given is None else given, "filter")


class FilterRules(Generic[F]):
    """The conditions of every filter of ``model``; ``rules`` maps each of its fields to a
    :data:`Rule`, or to :data:`SEARCHED` for the search text the listing runs itself."""

    def __init__(self, model: type[F], **rules: Rule | None) -> None:
        names = set(model.filter_names())
        if missing := names - set(rules):
            raise TypeError(f"{model.__name__}: no store rule for {', '.join(sorted(missing))}")
        if unknown := set(rules) - names:
            raise TypeError(f"{model.__name__} has no filter {', '.join(sorted(unknown))}")
        self.model = model
        self.rules = rules
        """The rules as declared, by filter name."""
        self._conditions = {
            name: rule if isinstance(rule, tuple) else (rule, operator.eq)
            for name, rule in rules.items()
            if rule is not None
        }

    def parse(self, given: F | Mapping[str, Any] | None) -> F:
        """``given`` as the filter model (validated if a mapping; None: no filters).
        Raises ValidationError naming each bad filter."""
        return parse_filter(self.model, given)

    def apply(self, stmt: Select[T], value: F) -> Select[T]:
        """``stmt`` narrowed by every filter of ``value`` that is set (search excepted).
        Raises ValidationError for a value its column cannot be compared with."""
        for name, (column, compare) in self._conditions.items():
            wanted = getattr(value, name)
            if wanted is not None:
                check_filter(column, wanted, name)
                stmt = stmt.where(compare(column, wanted))
        return stmt
