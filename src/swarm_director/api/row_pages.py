"""Pages of Core rows (and a live tail's events) written as JSON without building a response
model per row.

A page response is normally validated into its pydantic model (``page_response``) and then
serialized: for the 50 rows of a log page that validation cost more than the query. The rows
come from the database, whose column types made them what the model says (they were checked
when written), so :class:`RowPageWriter` serializes them directly, with a serializer built from
the item model's own fields: the same names, types and JSON (ISO 8601 ``Z`` timestamps, enum
values) as the model gives, in about a quarter of the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from flask import Response
from pydantic import AliasChoices, BaseModel, TypeAdapter
from typing_extensions import TypedDict

#: TypedDict's functional form, with names made at run time (which type checkers refuse).
_typed_dict: Any = TypedDict


class RowPageWriter:
    """Writes ``{"items": [...], "next_cursor": ...}`` for rows holding ``item_model``'s fields.

    A row's attribute for a field is the field's name, or the first of its validation alias
    choices the row has (``meta`` for a log's ``metadata``).
    """

    def __init__(self, item_model: type[BaseModel]) -> None:
        self._fields = item_model.model_fields
        self._names = tuple(self._fields)
        item = _typed_dict(
            f"{item_model.__name__}Row",
            {name: field.annotation for name, field in self._fields.items()},
        )
        items = list[item]  # type: ignore[valid-type]  # a type made at run time
        page = _typed_dict(
            f"{item_model.__name__}RowPage", {"items": items, "next_cursor": str | None}
        )
        self._adapter: TypeAdapter[Any] = TypeAdapter(page)
        self._item_adapter: TypeAdapter[Any] = TypeAdapter(item)
        self._getters: dict[tuple[str, ...], itemgetter[Any]] = {}

    def _getter(self, columns: tuple[str, ...]) -> itemgetter[Any]:
        """The itemgetter picking the fields, in order, from rows with these columns."""
        getter = self._getters.get(columns)
        if getter is None:
            positions = []
            for name, field in self._fields.items():
                choices = field.validation_alias
                names = choices.choices if isinstance(choices, AliasChoices) else []
                found = [str(n) for n in names if n in columns] + [name]
                positions.append(columns.index(found[0]))
            getter = self._getters[columns] = itemgetter(*positions)
        return getter

    def _items(self, rows: Sequence[Any]) -> list[dict[str, Any]]:
        """The rows as dicts of the item model's fields, in its order."""
        if not rows:
            return []
        getter = self._getter(tuple(rows[0]._fields))
        return [dict(zip(self._names, getter(row), strict=True)) for row in rows]

    def response(self, rows: Sequence[Any], next_cursor: str | None) -> Response:
        """The 200 JSON response of the page."""
        body = self._adapter.dump_json({"items": self._items(rows), "next_cursor": next_cursor})
        return Response(body, status=200, mimetype="application/json")

    def each_json(self, rows: Sequence[Any]) -> list[str]:
        """Each row's JSON object on its own, as ``item_model``'s JSON (a live tail's events)."""
        dump = self._item_adapter.dump_json
        return [dump(item).decode() for item in self._items(rows)]
