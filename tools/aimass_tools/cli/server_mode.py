"""Server mode's runtime pieces, where the operator tools and their tests have found them.

They live in ``aimass_server`` (beside the core; what a function image's ``server`` stage carries without this
CLI): the names here are that package's, not copies.
"""

from __future__ import annotations

from aimass_server.held import HELD_EXTENSION, HeldRequests
from aimass_server.protocol import NoDelayProtocol, no_delay
from aimass_server.worker import app

__all__ = ["HELD_EXTENSION", "HeldRequests", "NoDelayProtocol", "app", "no_delay"]
