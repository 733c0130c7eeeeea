"""Seed data: a realistic demo swarm and large synthetic data sets for benchmarks."""
