"""The build kit: what every model build shares, so a ``build.py`` holds only what is its own model's.

A build script exports, checks and describes its model; the kit puts the result into the store
(``publish``: up-to-date check, lock, temporary directory, atomic swap), reports progress (``build_steps``),
writes the samples and seals the manifest (``write_samples``, ``seal``) and provides the command line
(``run_cli``). Import it as ``models.buildkit``: see ``models/README.md`` for how a build script gets the
repository root onto the import path.

Every check that can fail a build raises ``BuildError`` from a named function (``tests/unit/test_build_gates.py``
makes each one fail); ``python -m models.buildkit.reproduce <model>`` rebuilds a model into a scratch store and
compares its files' hashes with the store's, the check behind a card's "byte-identical rebuild".
"""

from models.buildkit.cli import DEFAULT_STORE, run_cli
from models.buildkit.errors import BuildError
from models.buildkit.publish import is_up_to_date, publish
from models.buildkit.record import release, seal, sig, timestamp, write_samples
from models.buildkit.steps import Steps, build_steps, console

__all__ = [
    "DEFAULT_STORE",
    "BuildError",
    "Steps",
    "build_steps",
    "console",
    "is_up_to_date",
    "publish",
    "release",
    "run_cli",
    "seal",
    "sig",
    "timestamp",
    "write_samples",
]
