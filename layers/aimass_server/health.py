"""The image's HEALTHCHECK: ``python3.11 -m aimass_server.health`` exits 0 once this container's server is ready.

Ready means ``GET /v2/health/ready`` answers 200: every model loaded (a path open without a key). Standard
library only, and nothing of the server imported: the base image has no curl to rely on, and the check runs
every few seconds beside the workers.
"""

from __future__ import annotations

import os
import sys
import urllib.request

from aimass_server.options import OptionError, port

READY_PATH = "/v2/health/ready"


def main() -> int:
    try:
        url = f"http://127.0.0.1:{port(os.environ)}{READY_PATH}"
    except OptionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:
            return 0 if answer.status == 200 else 1
    except OSError as error:  # refused, timed out, or a non-2xx answer (HTTPError)
        print(f"{url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
