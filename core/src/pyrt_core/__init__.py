"""pyrt: a container engine in Python (core)."""

__version__ = "0.1.0"
