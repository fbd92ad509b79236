"""``/console``: the browser console's built files (``make console`` bundles ``console/`` into ``build/console``).

A plain Starlette route, so a function serves it without importing FastAPI. The files are open (no key): the
console asks for the user's key and sends it with each API call it makes, so it can do nothing the key could
not do through the API. Every answer carries a strict Content-Security-Policy: the bundle is the only script,
and it reaches this origin only.

Where the folder is missing (a function image built without it, a clone before ``make console``), every
console path is a 503 that says how to build it, in the API's error shape.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from aimass.contract import CONSOLE_PATH
from aimass.errors import NotFound, ServiceUnavailable

# The repository's build folder (layers/aimass/http/console.py -> build/console); AIMASS_CONSOLE_DIR elsewhere.
_BUILT = Path(__file__).resolve().parents[3] / "build" / "console"
ENV = "AIMASS_CONSOLE_DIR"

# style-src allows no inline styles either: the bundle's CSS is a file, and charts draw on a canvas. media-src: the
# speech playground plays back the audio it is about to send, from an object URL of it (no other media).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
MAX_NAME = 200  # characters of a file's path under the folder; the bundle's are a few dozen
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".map": "application/json"}


def console_root() -> Path:
    """Where the built console is: AIMASS_CONSOLE_DIR, else the repository's ``build/console``."""
    configured = os.environ.get(ENV)
    return Path(configured) if configured else _BUILT


def console_routes(root: Path | None = None) -> list[BaseRoute]:
    """``/console/`` (its index.html) and every file under it, from ``root`` (default ``console_root()``);
    ``/console`` redirects to ``/console/``."""
    folder = (root or console_root()).resolve()

    async def endpoint(request: Request) -> Response:
        return console_file(folder, request.path_params.get("file", ""))

    async def folder_url(request: Request) -> Response:
        # The page names its bundle relative to itself: from /console that would be /app.js. A relative
        # Location keeps whatever prefix the path had (an API Gateway stage: /prod/console -> /prod/console/).
        console_file(folder, "")  # the same 503 where it is not built
        return RedirectResponse("console/", status_code=308, headers=SECURITY_HEADERS)

    return [
        Route(CONSOLE_PATH, folder_url, methods=["GET", "HEAD"], include_in_schema=False),
        Route(f"{CONSOLE_PATH}/{{file:path}}", endpoint, methods=["GET", "HEAD"], include_in_schema=False),
    ]


def console_file(folder: Path, relative: str) -> Response:
    """The file at ``relative`` under ``folder`` (index.html for the empty path); the errors render as JSON."""
    index = folder / "index.html"
    if not index.is_file():
        raise ServiceUnavailable(
            f"the console is not built here ({folder} has no index.html): run `make console`, "
            f"or set {ENV} to a folder holding its build"
        )
    missing = NotFound(f"the console has no file {relative[:MAX_NAME]!r}")
    # The bundle's names are short and plain: anything else (a NUL byte, a name past what the file system takes)
    # is no file of it, answered before the file system is asked.
    if len(relative) > MAX_NAME or "\x00" in relative:
        raise missing
    target = (folder / (relative or "index.html")).resolve()
    # A path that leaves the folder (.., an absolute part, a link out) is a file it does not hold.
    try:
        held = target.is_relative_to(folder) and target.is_file()
    except OSError:  # a component too long for the file system, a loop of links
        held = False
    if not held:
        raise missing
    media = _TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if media == "text/html":
        media = "text/html; charset=utf-8"
    # index.html names the bundle without a hash: revalidate everything, which is cheap (ETag, Last-Modified).
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    return FileResponse(target, media_type=media, headers=headers)
