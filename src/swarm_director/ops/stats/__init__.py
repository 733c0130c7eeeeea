"""``db stats`` and the statement timings it reports (collected by every server process)."""
