"""Schema management: Alembic migrations (``migrate``) and drift detection (``validate``)."""
