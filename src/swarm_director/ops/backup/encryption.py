"""How backups are encrypted, from the settings: age recipients (``SWARM_BACKUP_RECIPIENTS``)
or the legacy key (``SWARM_BACKUP_KEY``). The command line and the console's "back up now"
both read them here, so a backup is encrypted the same way whoever asks for it."""

from __future__ import annotations

from swarm_director.config import Settings
from swarm_director.ops.crypto.age import Recipient, parse_recipient
from swarm_director.ops.crypto.sdbkenc1 import parse_key


def backup_key(settings: Settings) -> bytes | None:
    """The key of ``SWARM_BACKUP_KEY`` (None: backups are not encrypted)."""
    if settings.backup_key is None or not settings.backup_key.get_secret_value().strip():
        return None
    return parse_key(settings.backup_key.get_secret_value().strip())


def backup_recipients(settings: Settings) -> list[Recipient]:
    """The age recipients of ``SWARM_BACKUP_RECIPIENTS`` (empty: no age encryption)."""
    return [parse_recipient(text) for text in settings.backup_recipients]
