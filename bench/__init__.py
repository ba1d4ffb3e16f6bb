"""Benchmarks run by `make bench`. Each prints its figures; none asserts on time."""
