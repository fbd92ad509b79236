"""The one error the twin raises: the message says which Dockerfile line, or which step, and why."""

from __future__ import annotations


class PackagingError(Exception):
    """The Dockerfile cannot be replayed, or replaying it failed."""
