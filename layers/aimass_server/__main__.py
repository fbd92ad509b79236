"""``python -m aimass_server``: server mode as a container runs it (a function image's ``server`` stage).

The function's own settings, from the environment as in Lambda (``AIMASS_MODEL_STORE``, ``AIMASS_DOMAINS``,
``AIMASS_METERING``, ...: ``aimass.settings``), plus where to listen and how wide to run
(``aimass_server.options``): ``PORT`` (8080), ``AIMASS_HOST`` (every interface), ``AIMASS_WORKERS`` (one per
core the container may use). ``AIMASS_INTRA_OP_THREADS`` defaults to each worker's share of those cores and
``AIMASS_MICRO_BATCH_ROWS`` to 32, as under ``aimass serve``. Keys are the deployment's (``AIMASS_METERING``:
``dynamodb`` with its tables, or ``off`` behind a gateway that checks them); no development key is made here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from pydantic import ValidationError

from aimass.settings import Settings
from aimass_server.launch import serve
from aimass_server.options import OptionError, server_options
from aimass_server.sizing import MICRO_BATCH_ROWS, available_cores, worker_settings


def main(environ: Mapping[str, str] = os.environ) -> int:
    try:
        options = server_options(environ)
        settings = Settings()
    except (OptionError, ValidationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    cores = available_cores()
    workers = options.workers or cores
    settings = worker_settings(settings, workers=workers, cores=cores)
    if "AIMASS_MICRO_BATCH_ROWS" not in environ:
        settings = settings.model_copy(update={"micro_batch_rows": MICRO_BATCH_ROWS})
    print(
        f"AI Mass server mode: {workers} worker process(es) on {options.host}:{options.port}, "
        f"{settings.intra_op_threads} ONNX Runtime thread(s) each, models from {settings.model_store}, "
        f"metering {settings.metering}",
        file=sys.stderr,
        flush=True,
    )
    serve(settings, host=options.host, port=options.port, workers=workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
