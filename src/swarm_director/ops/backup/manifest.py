"""Backup manifests and backup folders: reading, writing, listing and pruning.

A manifest (``<backup>.manifest.json``) says what a backup holds: size, SHA-256, schema
revision, rows per table, source dialect and database, creation time, tool version,
compression and encryption. A backup without one is never treated as usable.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from swarm_director.db.base import utcnow
from swarm_director.ops.durable import fsync_dir, publish
from swarm_director.ops.errors import CorruptBackupError
from swarm_director.private_files import write_private_text

FORMAT = "swarm-director-backup"
FORMAT_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"
EXTENSIONS = {"sqlite": ".sqlite3", "postgresql": ".pgdump"}
#: Files being written carry this prefix until they are complete (hidden from listings).
PART_PREFIX = ".part-"


@dataclass
class Manifest:
    """What a backup contains; written as JSON beside the backup file."""

    file: str
    bytes: int
    sha256: str
    dialect: str
    source: str
    """Which database it is a backup of (file path or host/name, never a password)."""
    schema_revision: str | None
    row_counts: dict[str, int]
    created_at: str
    tool_version: str
    raw_format: str
    raw_bytes: int
    compression: str | None = None
    encryption: str | None = None
    kind: str = "manual"
    seconds: float = 0.0
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)

    @property
    def total_rows(self) -> int:
        return sum(self.row_counts.values())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read a manifest; anything that is not one of ours is a :class:`CorruptBackupError`."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CorruptBackupError(
                f"{path.name} is missing: not a swarm-director backup (or its manifest was lost)"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CorruptBackupError(f"manifest {path.name} is unreadable: {error}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CorruptBackupError(f"{path.name} is not a swarm-director backup manifest")
        if data.get("format_version") != FORMAT_VERSION:
            raise CorruptBackupError(
                f"{path.name} has manifest format {data.get('format_version')}, "
                f"this version reads {FORMAT_VERSION}"
            )
        known = {f for f in cls.__dataclass_fields__}
        try:
            manifest = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as error:
            raise CorruptBackupError(f"manifest {path.name} is incomplete: {error}") from None
        problem = manifest._problem()
        if problem is not None:
            raise CorruptBackupError(f"manifest {path.name} is invalid: {problem}")
        return manifest

    def _problem(self) -> str | None:
        """What makes a loaded manifest unusable, or None. Listing, pruning and verifying do
        arithmetic and date comparisons on these fields: a damaged or crafted manifest must be
        reported as unusable, not crash them (and with them every later pruned backup)."""

        def count(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= 0

        if not all(count(v) for v in (self.bytes, self.raw_bytes)):
            return "bytes and raw_bytes must be sizes"
        if not isinstance(self.row_counts, dict) or not all(
            isinstance(k, str) and count(v) for k, v in self.row_counts.items()
        ):
            return "row_counts must map tables to counts"
        texts = (self.file, self.sha256, self.dialect, self.source, self.created_at)
        if not all(isinstance(v, str) for v in texts):
            return "file, sha256, dialect, source and created_at must be text"
        if Path(self.file).name != self.file:
            return f"file {self.file!r} is not a bare file name"
        try:
            created = self.created
        except ValueError:
            return f"created_at {self.created_at!r} is not an ISO 8601 time"
        if created.tzinfo is None:
            return f"created_at {self.created_at!r} has no time zone"
        return None


@dataclass
class BackupEntry:
    """One backup found in a folder; ``problem`` says why it cannot be used, if it cannot."""

    path: Path
    manifest: Manifest | None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "problem": self.problem,
            "manifest": self.manifest.as_dict() if self.manifest else None,
        }


def manifest_path(backup: Path) -> Path:
    """Where the manifest of ``backup`` lives."""
    return backup.with_name(backup.name + MANIFEST_SUFFIX)


def write_manifest(backup: Path, manifest: Manifest) -> None:
    """Write the manifest atomically beside ``backup``."""
    target = manifest_path(backup)
    part = target.with_name(f"{PART_PREFIX}{uuid.uuid4().hex[:12]}.json")
    write_private_text(part, json.dumps(manifest.as_dict(), indent=2) + "\n")
    publish(part, target)


def list_backups(directory: Path) -> list[BackupEntry]:
    """Every backup in ``directory``, oldest first, including unusable ones (with the reason)."""
    if not directory.is_dir():
        return []
    entries: list[BackupEntry] = []
    described: set[str] = set()
    for mpath in sorted(directory.glob("*" + MANIFEST_SUFFIX)):
        backup = mpath.with_name(mpath.name[: -len(MANIFEST_SUFFIX)])
        described.add(backup.name)
        try:
            manifest = Manifest.load(mpath)
        except CorruptBackupError as error:
            entries.append(BackupEntry(backup, None, error.message))
            continue
        problem = None
        if not backup.exists():
            problem = "backup file is missing"
        elif backup.stat().st_size != manifest.bytes:
            problem = f"size is {backup.stat().st_size} bytes, manifest says {manifest.bytes}"
        entries.append(BackupEntry(backup, manifest, problem))
    for candidate in sorted(directory.iterdir()):
        name = candidate.name
        if name.startswith(".") or name in described or name.endswith(MANIFEST_SUFFIX):
            continue
        if any(ext in name for ext in EXTENSIONS.values()):
            entries.append(BackupEntry(candidate, None, "no manifest (incomplete or foreign)"))
    entries.sort(key=lambda e: e.manifest.created_at if e.manifest else "")
    return entries


def prune(
    directory: Path,
    source: str,
    *,
    keep_last: int | None,
    keep_days: float | None,
    protect: Path | None = None,
    now: datetime | None = None,
) -> list[Path]:
    """Delete backups of ``source`` that no rule keeps; returns the deleted files."""
    if keep_last is None and keep_days is None:
        return []
    now = now or utcnow()
    ours = [
        e
        for e in list_backups(directory)
        if e.manifest is not None and e.manifest.source == source and e.path.exists()
    ]
    ours.sort(key=lambda e: e.manifest.created_at if e.manifest else "", reverse=True)
    deleted: list[Path] = []
    for index, entry in enumerate(ours):
        assert entry.manifest is not None
        if protect is not None and entry.path == protect:
            continue
        kept_by_count = keep_last is not None and index < keep_last
        kept_by_age = keep_days is not None and entry.manifest.created > now - timedelta(
            days=keep_days
        )
        if kept_by_count or kept_by_age:
            continue
        entry.path.unlink(missing_ok=True)
        manifest_path(entry.path).unlink(missing_ok=True)
        deleted.append(entry.path)
    if deleted:
        fsync_dir(directory)
    return deleted
