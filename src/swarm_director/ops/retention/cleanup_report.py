"""What a log cleanup did, filled in step by step (so a failure can say how far it got)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class CleanupReport:
    """What a cleanup did (or, with ``dry_run``, would do)."""

    dry_run: bool
    matched: dict[str, int] = field(default_factory=dict)
    """Rows chosen, per log level."""
    archived: int = 0
    deleted: int = 0
    vanished: int = 0
    """Archived rows already gone when their batch was deleted (removed by someone else)."""
    dropped_rows: int = 0
    """Of ``deleted``, the rows that went with whole partitions."""
    drop_seconds: float = 0.0
    """How long the transaction that dropped the partitions took."""
    dropped_bytes: int = 0
    """Bytes of the partitions dropped whole (returned to the file system at once)."""
    archive: str | None = None
    partitions: list[str] = field(default_factory=list)
    """PostgreSQL: monthly partitions dropped whole (with ``dry_run``: that would be)."""
    batches: int = 0
    longest_batch_s: float = 0.0
    bytes_before: int = 0
    bytes_after: int = 0
    bytes_freed: int = 0
    """Space no longer used by data (returned to the file system or free for reuse)."""
    seconds: float = 0.0

    @property
    def total_matched(self) -> int:
        return sum(self.matched.values())

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items()}
        data["total_matched"] = self.total_matched
        data["seconds"] = round(self.seconds, 3)
        data["longest_batch_s"] = round(self.longest_batch_s, 4)
        return data
