"""Benchmarks (`make bench`). Each script prints its figures and can write them as JSON."""
