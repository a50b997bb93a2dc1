"""Benchmarks of hanmo (`make bench`); see bench/README.md."""
