"""Benchmarks that print and save figures (run as `python -m benchmarks.<name>` from the repository root)."""
