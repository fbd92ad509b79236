"""Image classification: images → Pillow (decode, crop, resize) → ONNX network → logits; ``classify`` on top.

A request's images are read twice: first their headers, so that every image is checked and the pixels
the request would decode are summed and held to the budget (``max_request_pixels``) before any is
decoded; then each in turn, decoded straight to the network's small square, so that at most one
full-size image is alive whatever the request's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydantic import ConfigDict, Field

from aimass.errors import InvalidInput, ModelLoadError, ModelNotReady
from aimass.schema import Schema
from aimass.serving.batching import check_budget, decode_within, in_chunks
from aimass.serving.runtime import ModelRuntime, Prediction, Tensor
from aimass.serving.tasks import Base64File, TaskResult, TaskSpec
from aimass_vision.codecs import (
    VisionPreprocessing,
    check_pixels,
    crop_and_resize,
    image_pixels,
    normalise,
    preprocess,
    softmax,
    unwrap_base64,
)

# The classify task's batch limit: the task route does not see the settings, and a request's images run as
# one batch whose decoding dominates its time.
MAX_IMAGES = 32
SERVED = {"BYTES": (-1,), "UINT8": (-1, -1, -1, 3)}  # encoded images, decoded RGB pixels [n, H, W, 3]
SUMMED = " (width x height, summed over its images)"
Pixels = npt.NDArray[np.uint8]  # one image as the network takes it, before normalising: [size, size, 3]


class ClassifyRequest(Schema):
    """``POST /v1/vision/classify``: images in, each one's most likely classes back."""

    model_config = ConfigDict(extra="forbid")

    images: list[Base64File] = Field(
        min_length=1, max_length=MAX_IMAGES, description="JPEG, PNG, WebP or GIF images (GIF: the first frame)"
    )
    top_k: int = Field(default=5, ge=1, le=1000, description="classes per image, most likely first (at most all)")


def _classify_task(run: Callable[[ClassifyRequest], TaskResult]) -> TaskSpec:
    return TaskSpec(ClassifyRequest, run, file_field="images", summary="Classify images")


def _not_loaded(request: ClassifyRequest) -> TaskResult:
    # Declared tasks are routed while the models load; a request runs the spec of the model it reaches.
    raise ModelNotReady("no vision model has loaded yet; retry in a moment")


class ImageClassificationRuntime(ModelRuntime):
    @classmethod
    def declared_tasks(cls) -> dict[str, TaskSpec]:
        return {"classify": _classify_task(_not_loaded)}

    def load(self) -> None:
        self.pre = self.preprocessing(VisionPreprocessing)
        self.session = self.engine_session()
        engine = self.manifest.engine

        side, self.labels = self.pre.image_size, self.manifest.labels or ()
        if [(t.datatype, t.shape) for t in engine.inputs] != [("FP32", (-1, 3, side, side))]:
            raise ModelLoadError(f"{self.label}: the vision runtime feeds one FP32 [-1, 3, {side}, {side}] graph input")
        classes = ("FP32", (-1, len(self.labels)))
        if [(t.datatype, t.shape) for t in (*engine.outputs, *self.manifest.outputs)] != [classes, classes]:
            raise ModelLoadError(
                f"{self.label}: the graph and the manifest must each have one FP32 [-1, classes] output, with one "
                f"manifest label per class ({len(self.labels)} labels)"
            )
        # Encoded images and decoded RGB pixels are both served when the manifest declares them; a request
        # sends one of the two.
        served = {t.datatype: t.name for t in self.manifest.inputs if SERVED.get(t.datatype) == t.shape}
        if not served or len(served) != len(self.manifest.inputs):
            raise ModelLoadError(
                f"{self.label}: the vision runtime serves BYTES [-1] and/or UINT8 [-1, -1, -1, 3] inputs"
            )
        self.encoded, self.decoded = served.get("BYTES"), served.get("UINT8")
        self.fed, self.logits = engine.inputs[0].name, engine.outputs[0].name
        self.served_output = self.manifest.outputs[0].name
        self._tasks = {"classify": _classify_task(self.classify)}

    def predict(self, inputs: Mapping[str, Tensor]) -> Prediction:
        logits = self._run(self._images(inputs))
        return Prediction(outputs={self.served_output: logits}, usage={"images": len(logits)})

    def tasks(self) -> dict[str, TaskSpec]:
        return self._tasks

    def classify(self, request: ClassifyRequest) -> TaskResult:
        probabilities = softmax(self._run(self._encoded(request.images, "images")))
        best = np.argsort(-probabilities, axis=1, kind="stable")[:, : request.top_k]
        outputs = [
            [{"label": self.labels[j], "index": int(j), "score": float(row[j])} for j in top]
            for row, top in zip(probabilities, best, strict=True)
        ]
        return TaskResult(outputs=outputs, usage={"images": len(outputs)})

    def _images(self, inputs: Mapping[str, Tensor]) -> Iterator[Pixels]:
        given = [name for name in (self.encoded, self.decoded) if name and name in inputs]
        if len(given) != 1:
            declared = [name for name in (self.encoded, self.decoded) if name]
            raise InvalidInput(f"send exactly one of the inputs {declared}", param="inputs")
        (name,) = given
        if name == self.encoded:
            return self._encoded(inputs[name].ravel().tolist(), name)
        return self._decoded(inputs[name], name)

    def _encoded(self, items: Sequence[bytes], name: str) -> Iterator[Pixels]:
        return decode_within(
            [unwrap_base64(item) for item in items],
            cost=partial(image_pixels, pre=self.pre),
            decode=partial(preprocess, pre=self.pre),
            limit=self.pre.max_request_pixels,
            unit="pixels",
            counted=SUMMED,
            param=name,
        )

    def _decoded(self, tensor: Tensor, name: str) -> Iterator[Pixels]:
        count, height, width = tensor.shape[:3]
        check_pixels(width, height, self.pre, where=f"{name}[0]")  # one shape for them all
        check_budget(count * height * width, self.pre.max_request_pixels, unit="pixels", counted=SUMMED, param=name)
        return (
            crop_and_resize(Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)), self.pre)
            for pixels in tensor
        )

    def _run(self, images: Iterator[Pixels]) -> npt.NDArray[np.float32]:
        def classify(chunk: list[Pixels]) -> npt.NDArray[np.float32]:
            (logits,) = self.session.run([self.logits], {self.fed: normalise(np.stack(chunk), self.pre)})
            return logits  # type: ignore[no-any-return]

        return in_chunks(images, classify)
