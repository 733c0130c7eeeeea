"""Drafts: numbered, immutable versions of a task's text, their review and diffs."""

from __future__ import annotations

from flask import Response
from pydantic import BaseModel, Field

from swarm_director.api.common import (
    PageQuery,
    QueryModel,
    TaskPath,
    blueprint,
    created_response,
    json_response,
    listed,
)
from swarm_director.schemas import DraftCreate, DraftDiffOut, DraftOut, DraftPage, DraftUpdate
from swarm_director.schemas.common import PositiveId
from swarm_director.store import drafts
from swarm_director.web.context import session

bp = blueprint("drafts", "Draft versions of a task: create, review, compare.")


class DraftPath(BaseModel):
    draft_id: PositiveId


class VersionPath(BaseModel):
    task_id: PositiveId
    version: PositiveId


class DiffQuery(QueryModel):
    from_version: PositiveId = Field(description="The older side of the diff.")
    to_version: PositiveId = Field(description="The newer side of the diff.")


@bp.get("/tasks/<int:task_id>/drafts", responses={200: DraftPage})
def list_drafts(path: TaskPath, query: PageQuery) -> Response:
    """List a task's draft versions, oldest first."""
    return listed(DraftPage, drafts.list_drafts, path.task_id, query=query)


@bp.post("/tasks/<int:task_id>/drafts", responses={201: DraftOut})
def create_draft(path: TaskPath, body: DraftCreate) -> Response:
    """Store a new version of the task's draft; the version number is assigned (last + 1)."""
    draft = drafts.create_draft(session(), path.task_id, body)
    return created_response(DraftOut.model_validate(draft), f"/api/drafts/{draft.id}")


@bp.get("/tasks/<int:task_id>/drafts/<int:version>", responses={200: DraftOut})
def get_draft_version(path: VersionPath) -> Response:
    """Get version `version` of the task's draft."""
    draft = drafts.get_draft_version(session(), path.task_id, path.version)
    return json_response(DraftOut.model_validate(draft))


@bp.get("/tasks/<int:task_id>/drafts/diff", responses={200: DraftDiffOut})
def diff_drafts(path: TaskPath, query: DiffQuery) -> Response:
    """A unified diff between two versions of the task's draft."""
    diff = drafts.diff_drafts(session(), path.task_id, query.from_version, query.to_version)
    return json_response(
        DraftDiffOut(
            task_id=path.task_id,
            from_version=query.from_version,
            to_version=query.to_version,
            diff=diff,
        )
    )


@bp.get("/drafts/<int:draft_id>", responses={200: DraftOut})
def get_draft(path: DraftPath) -> Response:
    """Get one draft version by its id."""
    return json_response(DraftOut.model_validate(drafts.get_draft(session(), path.draft_id)))


@bp.patch("/drafts/<int:draft_id>", responses={200: DraftOut})
def review_draft(path: DraftPath, body: DraftUpdate) -> Response:
    """Record a review: status, reviewer and notes. The content is immutable (422)."""
    draft = drafts.review_draft(session(), path.draft_id, body)
    return json_response(DraftOut.model_validate(draft))
