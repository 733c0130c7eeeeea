"""Helpers for store tests: a session in a write transaction and small row factories."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from swarm_director.db import Database
from swarm_director.models import Agent, Task
from swarm_director.store import agents, tasks

_names = count(1)


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    """A session in a write transaction, committed when the test ends."""
    with db.transaction() as s:
        yield s


def new_agent(session: Session, **fields: Any) -> Agent:
    """A stored agent with a unique name unless one is given."""
    fields.setdefault("name", f"agent-{next(_names)}")
    fields.setdefault("agent_type", "worker")
    return agents.create_agent(session, fields)


def new_task(session: Session, **fields: Any) -> Task:
    """A stored pending task."""
    fields.setdefault("type", "analysis")
    fields.setdefault("title", f"task {next(_names)}")
    return tasks.create_task(session, fields)


def count_rows(session: Session, model: Any, *where: Any) -> int:
    """How many rows of ``model`` match ``where``."""
    return int(session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0)
