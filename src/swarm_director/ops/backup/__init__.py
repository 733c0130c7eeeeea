"""Backups: ``db backup``/``db backups`` (create), ``db verify``, ``db restore``, and their files.

A backup is a database snapshot (SQLite file or ``pg_dump`` archive), gzip-compressed and
optionally encrypted, with a manifest beside it; its temporary ``.part`` files are removed by
the next backup when a killed run left them.
"""
