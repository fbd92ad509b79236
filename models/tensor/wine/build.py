"""Build tensor-wine, a scikit-learn pipeline imported as any user's model is, into the model store.

    python models/tensor/wine/build.py [--store model_store] [--force]

The catalogued example of the tensor domain: no domain code of its own. Trains a scikit-learn pipeline
(standardise, then a logistic regression) on three quarters of scikit-learn's wine data, converts it with
``aimass_tools.importing.from_sklearn`` (skl2onnx, the converter ``aimass models import model.joblib`` uses), and
imports it with ``aimass.importing.import_graph`` (the checks, the task found from its shape, the samples, the
manifest), keeping held-out rows as the samples. Then it checks the served graph against scikit-learn and
measures accuracy on the held-out quarter through the ``classify-rows`` task, as a client sends rows. Below
MIN_ACCURACY the build fails.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

# Run as a script and loaded by file path: put the repository root on the import path (models/README.md).
_REPO = Path(__file__).resolve().parents[3]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from aimass.importing.importer import ImportSpec, import_graph  # noqa: E402
from aimass.serving.domains import runtime_class  # noqa: E402
from aimass.serving.runtime import ModelRuntime  # noqa: E402
from aimass.serving.session import SessionFactory  # noqa: E402
from aimass.settings import Settings  # noqa: E402
from aimass.store.base import ModelArtifact  # noqa: E402
from aimass.store.manifest import read_manifest  # noqa: E402
from models.buildkit import BuildError, build_steps, publish, run_cli, seal, sig  # noqa: E402

# The model's own modules in a block of their own.
# isort: split
from models.tensor.wine.spec import (  # noqa: E402
    FEATURES,
    LABELS,
    MAX_REFERENCE_DIFF,
    MIN_ACCURACY,
    NAME,
    SAMPLE_COUNT,
    SEED,
    SOLVER,
    TEST_FRACTION,
    VERSION,
    C,
)


def build(store: Path, *, force: bool = False) -> Path:
    """Build the model into ``store`` unless it is already there; return the version directory."""
    return publish(store, NAME, VERSION, _build_into, force=force)


def _build_into(work: Path) -> None:
    with build_steps(total=4) as step:
        with step("train a scaler and a logistic regression on scikit-learn's wine data"):
            from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
            from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
            from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

            train_x, test_x, train_y, test_y = wine_split()
            model = make_pipeline(StandardScaler(), LogisticRegression(C=C, solver=SOLVER, max_iter=1000))
            model.fit(train_x, train_y)

        with step("convert with skl2onnx and import it as any model is imported"):
            from aimass_tools.importing import from_sklearn

            converted = from_sklearn(model)
            if converted.labels != LABELS:
                raise BuildError(f"the classifier's classes are {converted.labels}; spec.py says {list(LABELS)}")
            spec = ImportSpec(
                name=NAME,
                labels=converted.labels,
                feature_names=FEATURES,
                description="Which of three cultivars a wine came from, given 13 measurements of its chemistry: a "
                "scikit-learn pipeline imported with no domain code of its own.",
                source=f"trained by models/tensor/wine/build.py on scikit-learn's wine data; {converted.source}",
                license="Apache-2.0",
                filename="model.onnx",
            )
            samples = {"inputs": {"features": test_x[:SAMPLE_COUNT].tolist()}}
            imported = import_graph(converted.graph, spec, work, _sessions(work), samples=samples)
            if imported.manifest.task != "tabular-classification":
                raise BuildError(f"the import found a {imported.manifest.task} model, not a tabular classifier")

        runtime = served_runtime(work)
        with step("check the served graph against scikit-learn"):
            max_diff = check_reference(runtime, test_x, model.predict_proba(test_x))

        with step("measure held-out accuracy through the served classify-rows task"):
            accuracy = check_accuracy(runtime, test_x, test_y)
            quality: dict[str, Any] = {
                "accuracy": sig(accuracy),
                "measured": "the classify-rows task on the held-out rows, sent as {feature: value} objects",
                "dataset": f"scikit-learn {metadata.version('scikit-learn')} load_wine: {len(train_y)} train, "
                f"{len(test_y)} held-out rows (stratified, seed {SEED})",
                "framework": ", ".join(f"{name} {metadata.version(name)}" for name in ("scikit-learn", "skl2onnx")),
                "reference_max_abs_diff": sig(max_diff),
            }
            seal(work, read_manifest(work).model_copy(update={"quality": quality}))


def wine_split() -> tuple[Any, Any, Any, Any]:
    """scikit-learn's wine data as (train rows, held-out rows, train labels, held-out labels), stratified."""
    import numpy as np
    from sklearn.datasets import load_wine  # type: ignore[import-untyped]
    from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

    wine = load_wine()
    if tuple(wine.feature_names) != FEATURES:
        raise BuildError(f"load_wine's columns are {wine.feature_names}; spec.py says {list(FEATURES)}")
    labels = wine.target_names[wine.target]
    split: tuple[Any, Any, Any, Any] = train_test_split(
        wine.data.astype(np.float32), labels, test_size=TEST_FRACTION, random_state=SEED, stratify=labels
    )
    return split


def check_reference(runtime: ModelRuntime, rows: Any, reference: Any) -> float:
    """The served probabilities of ``rows`` against scikit-learn's (``reference``); returns the largest
    difference, and raises BuildError above MAX_REFERENCE_DIFF."""
    import numpy as np

    served = runtime.predict({"features": rows}).outputs["probabilities"]
    max_diff = float(np.abs(served - np.asarray(reference, dtype=np.float32)).max())
    if max_diff > MAX_REFERENCE_DIFF:
        raise BuildError(f"the graph differs from scikit-learn by {max_diff:.2e} (at most {MAX_REFERENCE_DIFF})")
    return max_diff


def check_accuracy(runtime: ModelRuntime, rows: Any, truth: Any) -> float:
    """The quality gate: accuracy of the classify-rows task on ``rows`` (sent as {feature: value} objects, as a
    client sends them) against their ``truth`` labels; raises BuildError below MIN_ACCURACY."""
    import numpy as np

    task = runtime.tasks()["classify-rows"]
    objects = [dict(zip(FEATURES, row.tolist(), strict=True)) for row in rows]
    answers = task.run(task.request.model_validate({"rows": objects})).outputs
    accuracy = float(np.mean([a[0]["label"] == label for a, label in zip(answers, truth, strict=True)]))
    if accuracy < MIN_ACCURACY:
        raise BuildError(f"held-out accuracy {accuracy:.3f} is below {MIN_ACCURACY}")
    return accuracy


def _sessions(work: Path) -> SessionFactory:
    return SessionFactory(Settings(model_store=work.parent))


def served_runtime(work: Path) -> ModelRuntime:
    """The tensor runtime over the version being built, loaded as the server loads it."""
    manifest = read_manifest(work)
    runtime = runtime_class(manifest.domain)(ModelArtifact(manifest=manifest, directory=work), _sessions(work))
    runtime.load()
    return runtime


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
