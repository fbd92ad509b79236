"""Where the twin reads and writes: the repository, its caches, and the files it adds to a payload."""

from __future__ import annotations

from pathlib import Path

# tools/aimass_tools/packaging/layout.py: three levels below the repository root, which is the build context.
REPO = Path(__file__).resolve().parents[3]
PIP_CACHE = REPO / "build" / "pip-cache"
# Written next to the payload for local runs and tests; the image holds neither.
ENV_FILE = ".env.json"
REPORT_FILE = ".payload.json"
# COPY sources under this folder may come from elsewhere (--model-store), and count as models in the report.
MODEL_STORE_PREFIX = "model_store"
