"""Benchmarks: docker-mini side by side with its peers in one run, printing ratios (`make bench`)."""
