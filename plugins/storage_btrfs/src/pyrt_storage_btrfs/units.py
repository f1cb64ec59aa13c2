"""Sizes for the btrfs driver's options: pyrt-core's docker-style parser."""
from pyrt_core.api import human_size, parse_size

__all__ = ["human_size", "parse_size"]
