"""Warbler: a self-hosted intelligent chat server."""

__version__ = "0.1.0"
