"""Tests pick a free port with the one function the embedded Redis and the bench use."""

from memory.embedded import free_port

__all__ = ["free_port"]
