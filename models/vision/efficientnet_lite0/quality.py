"""Quality: the served path against the PyTorch reference on scikit-image's photos, and a sanity check of answers.

Each number measured here goes into the manifest's ``quality`` and the model card; the checks fail the build.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from models.buildkit import BuildError, console, sig
from models.vision.efficientnet_lite0.served import network_batch
from models.vision.efficientnet_lite0.spec import (
    ENGINE_INPUT,
    MAX_ABS_DIFF,
    MIN_LABELLED_TOP1,
    OUTPUT,
    PHOTOS,
    TOP_K,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import onnxruntime as ort
    import torch


def reference_logits(network: torch.nn.Module, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    import torch

    with torch.no_grad():
        return network(torch.from_numpy(batch)).numpy()  # type: ignore[no-any-return]


def measure_quality(
    session: ort.InferenceSession, network: torch.nn.Module, photos: dict[str, bytes], labels: list[str]
) -> dict[str, Any]:
    """Served (ONNX Runtime) and reference (PyTorch) logits on the same decoded photos, scored by ``score``."""
    names = list(photos)
    batch = network_batch([photos[name] for name in names])  # the server's decoding, crop, resize, normalise
    (served,) = session.run([OUTPUT], {ENGINE_INPUT: batch})
    return score(names, served, reference_logits(network, batch), labels)


def score(
    names: list[str], served: npt.NDArray[np.float32], expected: npt.NDArray[np.float32], labels: list[str]
) -> dict[str, Any]:
    """The quality gate on logits per photo (rows in ``names`` order): served against reference, then the
    served top-1 against each photo's accepted classes (``spec.PHOTOS``). Raises BuildError naming what failed."""
    import numpy as np

    diff = float(np.abs(served - expected).max())
    if diff > MAX_ABS_DIFF:
        raise BuildError(f"served logits differ from PyTorch's by up to {diff:.2e} (allowed {MAX_ABS_DIFF})")

    probabilities = np.exp(served - served.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    per_photo: dict[str, Any] = {}
    differing: list[str] = []
    for row, name in enumerate(names):
        top = [int(i) for i in np.argsort(-served[row], kind="stable")[:TOP_K]]
        reference_top = [int(i) for i in np.argsort(-expected[row], kind="stable")[:TOP_K]]
        if top != reference_top:
            differing.append(f"{name}: served {top}, PyTorch {reference_top}")
        per_photo[name] = {
            "top1": labels[top[0]],
            "top1_index": top[0],
            "top1_probability": sig(float(probabilities[row, top[0]])),
            "top5_indices": top,
        }
        if PHOTOS[name]:
            per_photo[name] |= {
                "accepted": list(PHOTOS[name]),
                "top1_accepted": top[0] in PHOTOS[name],
                "top5_accepted": any(index in PHOTOS[name] for index in top),
            }
    if differing:  # a near tie may swap two classes of a correct export; more is a broken one
        raise BuildError(f"served top-{TOP_K} differs from PyTorch's on {len(differing)} photos: {differing}")

    labelled = [name for name in names if PHOTOS[name]]
    top1 = [name for name in labelled if per_photo[name]["top1_accepted"]]
    share = len(top1) / len(labelled)
    if share < MIN_LABELLED_TOP1:
        missed = [f"{name}: {per_photo[name]['top1']!r}" for name in labelled if name not in top1]
        raise BuildError(
            f"served top-1 is an accepted class for {len(top1)} of {len(labelled)} labelled photos "
            f"({share:.0%}, at least {MIN_LABELLED_TOP1:.0%} needed); missed {missed}"
        )
    return {
        "reference_photos": len(names),
        "reference_max_abs_diff": sig(diff),
        "reference_threshold_max_abs_diff": MAX_ABS_DIFF,
        "reference_top5_identical": len(names) - len(differing),
        "labelled_photos": len(labelled),
        "labelled_top1_correct": len(top1),
        "labelled_top5_correct": sum(per_photo[name]["top5_accepted"] for name in labelled),
        "labelled_threshold_top1": MIN_LABELLED_TOP1,
        "accepted_classes": "ImageNet-1k classes naming what scikit-image's description of each photo says it shows",
        "photos": per_photo,
    }


def print_quality(quality: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table("photo", "served top-1", "probability", "top-5 indices")
    for name, result in quality["photos"].items():
        label = f"{result['top1']} ({result['top1_index']})"
        table.add_row(name, label, f"{result['top1_probability']:.4f}", str(result["top5_indices"]))
    console.print(table)
    console.print(
        f"served vs PyTorch over {quality['reference_photos']} photos: max |logit diff| "
        f"{quality['reference_max_abs_diff']} (gate {quality['reference_threshold_max_abs_diff']}), "
        f"top-5 identical for {quality['reference_top5_identical']}; top-1 accepted for "
        f"{quality['labelled_top1_correct']}/{quality['labelled_photos']} photos with accepted classes, "
        f"top-5 for {quality['labelled_top5_correct']}"
    )
