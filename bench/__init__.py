"""Benchmarks, run by hand as `python bench/<name>.py` from the project root (see bench/README.md)."""
