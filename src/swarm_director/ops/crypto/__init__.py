"""Encryption of backups and archives: age (written and read) and ``SDBKENC1`` (read only)."""
