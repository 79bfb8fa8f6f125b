"""Benchmark: the memory work of one chat render/turn against raw Redis and the demo's approach.

Run `python -m bench [--quick] [--json PATH]`; see bench/README.md for what is measured and how.
"""
