"""Request and response bodies for email messages."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from swarm_director.enums import EmailStatus
from swarm_director.schemas.common import (
    EmailAddress,
    InputModel,
    LongText,
    NoNul,
    OutputModel,
    PageOut,
    Patch,
    PositiveId,
    ShortText,
)

#: RFC 5322 line limit; the column is sized for it.
Subject = Annotated[str, StringConstraints(min_length=1, max_length=998), NoNul]
AddressList = Annotated[list[EmailAddress], Field(max_length=100)]


class EmailCreate(InputModel):
    """A new email for a task, written as a draft or put straight into the outbox."""

    recipient: EmailAddress
    subject: Subject
    body: LongText
    sender: EmailAddress | None = None
    cc: AddressList = Field(default_factory=list)
    bcc: AddressList = Field(default_factory=list)
    draft_id: PositiveId | None = Field(default=None, description="Draft of the same task.")
    status: Literal[EmailStatus.DRAFT, EmailStatus.QUEUED] = EmailStatus.DRAFT


class EmailUpdate(InputModel):
    """Changes to an email. Address, subject and body change only while it is a draft;
    ``status`` follows draft→queued→sent→delivered, queued→failed, sent→failed, failed→queued."""

    recipient: Patch[EmailAddress] = None
    subject: Patch[Subject] = None
    body: Patch[LongText] = None
    sender: EmailAddress | None = None
    cc: Patch[AddressList] = None
    bcc: Patch[AddressList] = None
    draft_id: PositiveId | None = None
    status: Patch[EmailStatus] = None
    error_message: ShortText | None = Field(default=None, description="Only with status failed.")


class EmailStatusUpdate(InputModel):
    """A status change of an email (``error_message`` only with ``failed``)."""

    status: EmailStatus
    error_message: ShortText | None = None


class EmailOut(OutputModel):
    """A stored email. ``sent_at`` is when it last became ``sent``."""

    id: int
    task_id: int
    recipient: str
    subject: str
    body: str
    status: EmailStatus
    sender: str | None
    cc: list[str]
    bcc: list[str]
    draft_id: int | None
    sent_at: AwareDatetime | None
    error_message: str | None
    created_at: AwareDatetime
    updated_at: AwareDatetime


class EmailPage(PageOut[EmailOut]):
    """A page of emails, oldest first."""
