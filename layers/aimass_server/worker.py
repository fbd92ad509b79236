"""What each worker process runs: one app over every model of the store, loaded in this process.

Workers are separate processes sharing one listening socket (uvicorn's supervisor spawns them), so each loads
every model once. They read their settings from the environment the launcher prepared (``aimass_server.launch``).
"""

from __future__ import annotations

from starlette.types import ASGIApp

from aimass_server.held import HeldRequests


def app() -> ASGIApp:
    """uvicorn calls it as a factory, once per worker."""
    from aimass.http.app import build_app
    from aimass.settings import Settings

    return HeldRequests(build_app(Settings()))
