"""Reading export files back with DuckDB, and the rows they should hold (shared by the store,
CLI and API tests of exports)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from pydantic import BaseModel

from swarm_director.schemas.export import ExportField, ExportFormat, FieldKind

_DUCK_TYPES = {
    FieldKind.INTEGER: "BIGINT",
    FieldKind.TEXT: "VARCHAR",
    FieldKind.TIMESTAMP: "TIMESTAMPTZ",
    FieldKind.JSON: "JSON",
}


def expected_rows(item: type[BaseModel], rows: Iterable[Any]) -> list[dict[str, Any]]:
    """``rows`` (store rows or ORM objects) as the API item ``item`` gives them, in Python
    values: enums as their text, timestamps as aware UTC datetimes, documents parsed."""
    out = []
    for row in rows:
        data = item.model_validate(row, from_attributes=True).model_dump(by_alias=True)
        out.append({k: v.value if hasattr(v, "value") else v for k, v in data.items()})
    return out


def read_back(path: Path, fmt: ExportFormat | str, fields: Sequence[ExportField]) -> list[Any]:
    """Every row of the export file ``path``, read by DuckDB with the fields' types (CSV and
    JSON lines: declared, not guessed), as dicts of Python values like :func:`expected_rows`."""
    fmt = ExportFormat(fmt)
    columns = "{" + ", ".join(f"'{f.name}': '{_DUCK_TYPES[f.kind]}'" for f in fields) + "}"
    source = str(path).replace("'", "''")
    if fmt is ExportFormat.JSONL:
        relation = f"read_json('{source}', format='newline_delimited', columns={columns})"
    elif fmt is ExportFormat.CSV:
        # PostgreSQL's CSV rules: "" is an empty text, an empty cell a null.
        relation = (
            f"read_csv('{source}', header=true, columns={columns}, delim=',', quote='\"', "
            "escape='\"', allow_quoted_nulls=false, auto_detect=false)"
        )
    else:
        relation = f"read_parquet('{source}')"
    with duckdb.connect() as con:
        result = con.execute(f"SELECT * FROM {relation}")
        names = [d[0] for d in result.description]
        rows = result.fetchall()
    assert names == [f.name for f in fields]
    kinds = [f.kind for f in fields]
    return [
        {name: _python(kind, value) for name, kind, value in zip(names, kinds, row, strict=True)}
        for row in rows
    ]


def _python(kind: FieldKind, value: Any) -> Any:
    if value is None:
        return None
    if kind is FieldKind.JSON:
        return json.loads(value)
    if kind is FieldKind.TIMESTAMP:
        assert isinstance(value, datetime) and value.tzinfo is not None
        return value.astimezone(UTC)
    return value
