"""Helpers shared by the backup/restore tests."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from swarm_director.db import Base


def content(engine: Engine, *, skip: tuple[str, ...] = ("maintenance_events",)) -> dict[str, Any]:
    """Every row of every model table (but ``skip``), as comparable plain values."""
    snapshot: dict[str, Any] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in skip:
                continue
            pk = list(table.primary_key.columns)
            rows = conn.execute(
                sa.select(*[sa.type_coerce(c, sa.String) for c in table.columns]).order_by(*pk)
            )
            snapshot[table.name] = [tuple(r) for r in rows]
    return snapshot


def events(engine: Engine) -> list[tuple[str, str, dict[str, Any]]]:
    """(operation, status, details) of every audit event, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT operation, status, details FROM maintenance_events ORDER BY id")
        ).all()
    out = []
    for op, status, details in rows:
        if isinstance(details, str):
            details = json.loads(details)
        out.append((op, status, details))
    return out
