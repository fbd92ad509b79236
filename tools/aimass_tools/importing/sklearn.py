"""A fitted scikit-learn estimator or pipeline as one ONNX graph (skl2onnx), with what the graph cannot say.

Classifiers are converted without ZipMap (``options={'zipmap': False}``), so their probabilities are one tensor
``[n, classes]`` (the V2 protocol carries no sequences of maps), and their classes become the model's labels;
the features are the estimator's ``n_features_in_`` float32 columns with a dynamic batch axis, named by
``feature_names_in_`` where it was fitted on a data frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aimass.errors import UnsupportedModel
from aimass.importing.support import newest_opsets

INPUT = "features"


@dataclass(frozen=True)
class Converted:
    """A graph made from another framework, and the labels and feature names its object knew."""

    graph: bytes
    labels: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = None
    source: str = ""


def from_sklearn(estimator: Any, *, features: int | None = None) -> Converted:
    """``estimator`` (fitted) as ONNX: ``features`` FP32 ``[n, features]`` in; label and probabilities out for a
    classifier (``variable`` for a regressor)."""
    try:
        import skl2onnx  # type: ignore[import-untyped]
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType  # type: ignore[import-untyped]
    except ImportError:
        raise UnsupportedModel("converting scikit-learn models needs skl2onnx: pip install skl2onnx") from None
    width = features if features is not None else getattr(estimator, "n_features_in_", None)
    if not isinstance(width, int) or width < 1:
        raise UnsupportedModel(
            f"cannot tell how many features {type(estimator).__name__} takes (no n_features_in_: is it fitted?); "
            "give --features with the feature names, one a line"
        )
    classes = getattr(estimator, "classes_", None)
    newest = newest_opsets()
    tested = skl2onnx.get_latest_tested_opset_version()
    opsets = {"": min(newest[""], tested), "ai.onnx.ml": min(newest.get("ai.onnx.ml", 3), 3)}
    try:
        graph = to_onnx(
            estimator,
            initial_types=[(INPUT, FloatTensorType([None, width]))],
            options={"zipmap": False} if classes is not None else None,
            target_opset=opsets,
        )
    except Exception as exc:  # skl2onnx raises many types for estimators it has no converter for
        raise UnsupportedModel(
            f"skl2onnx cannot convert {type(estimator).__name__}: {exc}; export it to ONNX yourself and import the "
            ".onnx file"
        ) from None
    names = getattr(estimator, "feature_names_in_", None)
    return Converted(
        graph=graph.SerializeToString(),
        labels=tuple(str(label) for label in classes) if classes is not None else None,
        feature_names=tuple(str(name) for name in names) if names is not None else None,
        source=f"scikit-learn {type(estimator).__name__}, converted by skl2onnx {skl2onnx.__version__}",
    )
