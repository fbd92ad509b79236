"""The supervisor's start: the workers' environment, then uvicorn with server mode's protocol and loop."""

from __future__ import annotations

import json
import os

import uvicorn

from aimass.settings import Settings
from aimass_server.protocol import NoDelayProtocol

# The factory each worker calls (aimass_server.worker.app).
WORKER_APP = "aimass_server.worker:app"


def worker_environment(settings: Settings) -> dict[str, str]:
    """What the workers must read as the supervisor decided: they are spawned, and build their settings from the
    environment (``Settings()``), so what was chosen here (threads, batching, a store or plan given on the
    command line) travels there."""
    plans = {name: plan.model_dump() for name, plan in settings.plans.items()}
    return {
        "AIMASS_MODEL_STORE": str(settings.model_store),
        "AIMASS_INTRA_OP_THREADS": str(settings.intra_op_threads),
        "AIMASS_MICRO_BATCH_ROWS": str(settings.micro_batch_rows),
        "AIMASS_PLANS": json.dumps(plans),
    }


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Serve ``settings`` on ``workers`` processes sharing ``host:port`` until stopped (SIGINT or SIGTERM)."""
    os.environ.update(worker_environment(settings))
    uvicorn.run(
        WORKER_APP,
        factory=True,
        workers=workers,
        http=NoDelayProtocol,
        loop="uvloop",
        host=host,
        port=port,
        log_level="info",
        access_log=False,
    )
