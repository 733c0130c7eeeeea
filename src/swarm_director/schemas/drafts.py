"""Request and response bodies for drafts (numbered, immutable versions of a task's text)."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from swarm_director.enums import DraftStatus
from swarm_director.schemas.common import (
    InputModel,
    LongText,
    OutputModel,
    PageOut,
    Patch,
    PositiveId,
    ShortText,
)


class DraftCreate(InputModel):
    """A new version of a task's draft; the store numbers it (previous version + 1)."""

    content: LongText
    status: DraftStatus = DraftStatus.DRAFT
    author_agent_id: PositiveId | None = None


class DraftUpdate(InputModel):
    """The review of a draft. ``content`` is immutable: a new text is a new version."""

    status: Patch[DraftStatus] = None
    reviewer_agent_id: PositiveId | None = None
    review_notes: ShortText | None = None


class DraftOut(OutputModel):
    """A stored draft version."""

    id: int
    task_id: int
    version: int
    content: str
    status: DraftStatus
    author_agent_id: int | None
    reviewer_agent_id: int | None
    review_notes: str | None
    created_at: AwareDatetime
    updated_at: AwareDatetime


class DraftDiffOut(OutputModel):
    """A unified diff between two versions of a task's draft."""

    task_id: int
    from_version: int
    to_version: int
    diff: str = Field(description="Unified diff (empty when the texts are equal).")


class DraftPage(PageOut[DraftOut]):
    """A page of draft versions, oldest first."""
