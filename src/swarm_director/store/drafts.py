"""Drafts: numbered versions of a task's text. Content never changes; a new text is a new
version, numbered previous + 1 even under concurrent writers."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from swarm_director.errors import ConflictError, NotFoundError
from swarm_director.models import Agent, Draft, DraftStatus, Task
from swarm_director.schemas.drafts import DraftCreate, DraftUpdate
from swarm_director.store._common import (
    fits,
    flush_or_conflict,
    get_or_404,
    lock_or_404,
    require_ref,
    validated,
)
from swarm_director.store.pagination import DEFAULT_LIMIT, Ordering, Page, paginate

_BY_VERSION = Ordering("drafts", (Draft.version,))


def create_draft(session: Session, task_id: int, data: DraftCreate | Mapping[str, Any]) -> Draft:
    """Stores a new version of the task's draft and returns it (flushed, numbered).

    The version is the task's highest version + 1. The task row is locked first
    (PostgreSQL; SQLite serializes writers with BEGIN IMMEDIATE), so concurrent writers get
    consecutive numbers without gaps or duplicates. Raises NotFoundError (task),
    ValidationError (bad field, missing author).
    """
    body = validated(DraftCreate, data, "draft")
    lock_or_404(session, Task, task_id, "task")
    if body.author_agent_id is not None:
        require_ref(session, Agent, body.author_agent_id, "author_agent_id", "agent")
    latest = session.scalar(select(func.max(Draft.version)).where(Draft.task_id == task_id))
    draft = Draft(task_id=task_id, version=(latest or 0) + 1, **body.model_dump())
    session.add(draft)
    # Unreachable while every writer goes through here; a writer that bypasses the lock
    # gets a clear error instead of an IntegrityError.
    flush_or_conflict(
        session, ConflictError(f"version {draft.version} of task {task_id} was just taken")
    )
    return draft


def get_draft(session: Session, draft_id: int) -> Draft:
    """The draft with this id; NotFoundError if there is none."""
    return get_or_404(session, Draft, draft_id, "draft")


def get_draft_version(session: Session, task_id: int, version: int) -> Draft:
    """Version ``version`` of the task's draft; NotFoundError if the task or version is missing."""
    draft = None
    if fits(Draft.task_id.type, task_id) and fits(Draft.version.type, version):
        stmt = select(Draft).where(Draft.task_id == task_id, Draft.version == version)
        draft = session.scalar(stmt)
    if draft is None:
        get_or_404(session, Task, task_id, "task")
        raise NotFoundError(
            f"task {task_id} has no draft version {version}",
            details={"task_id": task_id, "version": version},
        )
    return draft


def list_drafts(
    session: Session, task_id: int, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page[Draft]:
    """A page of the task's draft versions, oldest first; NotFoundError if the task is missing."""
    get_or_404(session, Task, task_id, "task")
    stmt = select(Draft).where(Draft.task_id == task_id)
    return paginate(session, stmt, _BY_VERSION, limit=limit, cursor=cursor)


def list_drafts_for_review(session: Session, *, limit: int = 200) -> list[Draft]:
    """Drafts waiting for a review (``under_review``), the longest waiting first, at most
    ``limit``."""
    stmt = (
        select(Draft)
        .where(Draft.status == DraftStatus.UNDER_REVIEW)
        .order_by(Draft.updated_at, Draft.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def review_draft(session: Session, draft_id: int, data: DraftUpdate | Mapping[str, Any]) -> Draft:
    """Records a review (status, reviewer, notes) and returns the draft. The content cannot
    change: sending it is a ValidationError naming ``content``.

    Raises NotFoundError, ValidationError (bad field, missing reviewer).
    """
    changes = validated(DraftUpdate, data, "draft update").model_dump(exclude_unset=True)
    draft = get_draft(session, draft_id)
    if changes.get("reviewer_agent_id") is not None:
        require_ref(session, Agent, changes["reviewer_agent_id"], "reviewer_agent_id", "agent")
    for field, value in changes.items():
        setattr(draft, field, value)
    session.flush()
    return draft


def diff_drafts(session: Session, task_id: int, from_version: int, to_version: int) -> str:
    """A unified diff from one version of the task's draft to another ("" when equal).

    Raises NotFoundError when the task or either version is missing.
    """
    old = get_draft_version(session, task_id, from_version)
    new = get_draft_version(session, task_id, to_version)
    lines = difflib.unified_diff(
        old.content.splitlines(keepends=True),
        new.content.splitlines(keepends=True),
        fromfile=f"task {task_id} version {from_version}",
        tofile=f"task {task_id} version {to_version}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
