"""Reproducible performance comparisons for dag-provenance (see README.md)."""
