"""Benchmarks of the memory layer and the page; bench/README.md says what each measures."""
