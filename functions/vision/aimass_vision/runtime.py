"""Image classification: images → Pillow (decode, crop, resize) → ONNX network → logits; ``classify`` on top."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aimass.batching import in_chunks
from aimass.errors import InvalidInput, ModelLoadError
from aimass.runtime import ModelRuntime, Prediction, Tensor
from aimass.session import check_signature
from aimass.tasks import Base64File, TaskResult, TaskSpec
from aimass_vision.codecs import VisionPreprocessing, check_pixels, decode, network_input, softmax, unwrap_base64

# The classify task's batch limit: the task route does not see the settings, and a request's images run as
# one batch whose decoding dominates its time.
MAX_IMAGES = 32
SERVED = {"BYTES": (-1,), "UINT8": (-1, -1, -1, 3)}  # encoded images, decoded RGB pixels [n, H, W, 3]


class ClassifyRequest(BaseModel):
    """``POST /v1/vision/classify``: images in, each one's most likely classes back."""

    model_config = ConfigDict(extra="forbid")

    images: list[Base64File] = Field(
        min_length=1, max_length=MAX_IMAGES, description="JPEG, PNG, WebP or GIF images (GIF: the first frame)"
    )
    top_k: int = Field(default=5, ge=1, le=1000, description="classes per image, most likely first (at most all)")


class ImageClassificationRuntime(ModelRuntime):
    def load(self) -> None:
        try:
            self.pre = VisionPreprocessing.model_validate(self.manifest.preprocessing)
        except ValidationError as exc:
            raise ModelLoadError(f"{self.label}: invalid preprocessing: {exc}") from None
        engine = self.manifest.engine
        self.session = self.sessions.create(self.artifact.read(engine.file), label=self.label)
        check_signature(self.session, engine.inputs, engine.outputs, self.label)

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
        self._tasks = {
            "classify": TaskSpec(ClassifyRequest, self.classify, file_field="images", summary="Classify images"),
        }

    def predict(self, inputs: Mapping[str, Tensor]) -> Prediction:
        logits = self._run(self._images(inputs))
        return Prediction(outputs={self.served_output: logits}, usage={"images": len(logits)})

    def tasks(self) -> dict[str, TaskSpec]:
        return self._tasks

    def classify(self, request: ClassifyRequest) -> TaskResult:
        images = (decode(data, self.pre, where=f"images[{i}]") for i, data in enumerate(request.images))
        probabilities = softmax(self._run(images))
        best = np.argsort(-probabilities, axis=1, kind="stable")[:, : request.top_k]
        outputs = [
            [{"label": self.labels[j], "index": int(j), "score": float(row[j])} for j in top]
            for row, top in zip(probabilities, best, strict=True)
        ]
        return TaskResult(outputs=outputs, usage={"images": len(outputs)})

    def _images(self, inputs: Mapping[str, Tensor]) -> Iterator[Image.Image]:
        # A generator: each image is cropped and resized before the next is decoded, so a batch never holds
        # more than one full-size image.
        given = [name for name in (self.encoded, self.decoded) if name and name in inputs]
        if len(given) != 1:
            declared = [name for name in (self.encoded, self.decoded) if name]
            raise InvalidInput(f"send exactly one of the inputs {declared}", param="inputs")
        (name,) = given
        if name == self.encoded:
            for i, item in enumerate(inputs[name].ravel().tolist()):
                yield decode(unwrap_base64(item), self.pre, where=f"{name}[{i}]")
        else:
            for i, pixels in enumerate(inputs[name]):
                check_pixels(pixels.shape[1], pixels.shape[0], self.pre, where=f"{name}[{i}]")
                yield Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))

    def _run(self, images: Iterator[Image.Image]) -> npt.NDArray[np.float32]:
        def classify(chunk: list[Image.Image]) -> npt.NDArray[np.float32]:
            (logits,) = self.session.run([self.logits], {self.fed: network_input(iter(chunk), self.pre)})
            return logits  # type: ignore[no-any-return]

        return in_chunks(images, classify)
