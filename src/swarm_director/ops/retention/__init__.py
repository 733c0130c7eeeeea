"""What is deleted when: logs (``db cleanup-logs``), history, expired keys and sessions.

Logs are chosen by a policy, archived before anything goes, deleted in short batches (or by
whole monthly partitions on PostgreSQL), and the space is reclaimed afterwards.
"""
