"""Assemble a function's Lambda payload without Docker, by replaying its Dockerfile.

    python -m aimass_tools.packaging text [--out build/functions/text] [--model-store DIR] [--target server]

The command line only; the work is done by ``aimass_tools.packaging``, whose docstring describes the
payload folder, the two files it adds (``.env.json`` and the size report ``.payload.json``) and the
pip cache under ``build/pip-cache/``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from aimass_tools.packaging import LAMBDA_STAGE, REPO, REPORT_FILE, PackagingError, build_payload, print_report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aimass_tools.packaging", description=__doc__.split("\n\n")[0])
    parser.add_argument("function", help="the function to package, e.g. text (functions/<function>/Dockerfile)")
    parser.add_argument("--out", type=Path, help="payload folder (default: build/functions/<function>)")
    parser.add_argument("--model-store", type=Path, help="take the model_store/... COPY sources from DIR")
    parser.add_argument(
        "--target",
        help=f"the stage to assemble, as docker build --target (default: the Lambda stage, {LAMBDA_STAGE!r}; "
        "'server' for the long-lived server)",
    )
    args = parser.parse_args(argv)
    folder = args.function if args.target in (None, LAMBDA_STAGE) else f"{args.function}-{args.target}"
    out = args.out or REPO / "build" / "functions" / folder
    try:
        report = build_payload(args.function, out.resolve(), model_store=args.model_store, target=args.target)
    except PackagingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print_report(report)
    print(f"  payload: {out}  (size report: {out / REPORT_FILE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
