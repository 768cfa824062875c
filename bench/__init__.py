"""Benchmarks of the pricing service (`make bench`, `make loadtest`); results in bench/results/."""
