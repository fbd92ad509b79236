"""The one error a build raises on purpose."""

from __future__ import annotations


class BuildError(RuntimeError):
    """The build ran but its result is wrong (a check failed); nothing was written to the store."""
