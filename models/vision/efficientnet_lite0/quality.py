"""Quality: the served path against the PyTorch reference on scikit-image's photos, and a sanity check of answers.

Each number measured here goes into the manifest's ``quality`` and the model card; the checks fail the build.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from models.buildkit import BuildError, console, sig
from models.vision.efficientnet_lite0.served import network_batch
from models.vision.efficientnet_lite0.spec import ENGINE_INPUT, MAX_ABS_DIFF, OUTPUT, PHOTOS, TOP_K

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
    """Served (ONNX Runtime) and reference (PyTorch) logits on the same decoded photos; fail on any difference."""
    import numpy as np

    names = list(photos)
    batch = network_batch([photos[name] for name in names])  # the server's decoding, crop, resize, normalise
    (served,) = session.run([OUTPUT], {ENGINE_INPUT: batch})
    expected = reference_logits(network, batch)
    diff = float(np.abs(served - expected).max())
    if diff > MAX_ABS_DIFF:
        raise BuildError(f"served logits differ from PyTorch's by up to {diff:.2e} (allowed {MAX_ABS_DIFF})")

    probabilities = np.exp(served - served.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    per_photo: dict[str, Any] = {}
    for row, name in enumerate(names):
        top = [int(i) for i in np.argsort(-served[row], kind="stable")[:TOP_K]]
        reference_top = [int(i) for i in np.argsort(-expected[row], kind="stable")[:TOP_K]]
        if top != reference_top:
            raise BuildError(f"{name}: served top-{TOP_K} {top} is not PyTorch's {reference_top}")
        if PHOTOS[name] and top[0] not in PHOTOS[name]:
            raise BuildError(f"{name}: top-1 is {labels[top[0]]!r} ({top[0]}), not one of {PHOTOS[name]}")
        per_photo[name] = {
            "top1": labels[top[0]],
            "top1_index": top[0],
            "top1_probability": sig(float(probabilities[row, top[0]])),
            "top5_indices": top,
        }

    labelled = [name for name in names if PHOTOS[name]]
    return {
        "reference_photos": len(names),
        "reference_max_abs_diff": sig(diff),
        "reference_threshold_max_abs_diff": MAX_ABS_DIFF,
        "reference_top5_identical": len(names),  # every photo, in order: the build fails otherwise
        "labelled_photos": len(labelled),
        "labelled_top1_correct": len(labelled),
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
        f"top-5 identical for all; top-1 plausible for {quality['labelled_top1_correct']}/"
        f"{quality['labelled_photos']} photos with an ImageNet class"
    )
