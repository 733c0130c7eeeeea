"""Errors of the operations toolkit (all :class:`SwarmError`, so the CLI prints one line)."""

from __future__ import annotations

from swarm_director.errors import SwarmError


class BackupError(SwarmError):
    """A backup could not be written, listed or used."""

    code = "backup_error"


class CorruptBackupError(BackupError):
    """A backup file is damaged, truncated, foreign, or disagrees with its manifest."""

    code = "corrupt_backup"


class BackupKeyError(BackupError):
    """The backup key is missing, malformed or not the one the file was written with."""

    code = "backup_key"


class ToolError(SwarmError):
    """An external program (pg_dump, pg_restore) is missing, too old, or failed."""

    code = "tool_error"


class RetentionError(SwarmError):
    """Log retention could not finish; nothing after the reported point was deleted."""

    code = "retention_error"


class MaintenanceLockedError(SwarmError):
    """Another maintenance run holds the lock."""

    code = "locked"
