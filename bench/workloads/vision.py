"""Vision: encoded images in, ImageNet logits out. An item is one image.

Every item is scikit-image's photo of Chelsea the cat (451x300), encoded as a JPEG by Pillow: every image
is cropped and resized to the network's square, so only its decoding depends on the photo.
"""

from __future__ import annotations

import base64
import importlib
import io
import json
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from PIL import Image

from bench.workload import Array, Feeds, Outputs, Request, Route, Workload

if TYPE_CHECKING:
    from aimass.serving.runtime import ModelRuntime
    from aimass.store.base import ModelArtifact
    from aimass.store.manifest import ModelManifest
    from aimass_vision.runtime import ImageClassificationRuntime

JPEG_QUALITY = 90
BATCH = 32
TOP_K = 5
_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


@cache
def chelsea_jpeg() -> bytes:
    skimage_data: Any = importlib.import_module("skimage.data")  # a build dependency; the floor never needs it
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(skimage_data.chelsea())).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _b64(items: Sequence[bytes]) -> list[str]:
    return [base64.b64encode(item).decode() for item in items]


def _classify_request(manifest: ModelManifest, images: Sequence[bytes]) -> Request:
    return Request("/v1/vision/classify", json.dumps({"images": _b64(images), "top_k": TOP_K}).encode())


def _classify_agrees(body: bytes | str, expected: Outputs) -> bool:
    """Each image's best class is the raw logits' argmax."""
    logits = next(iter(expected.values()))
    best = [int(image[0]["index"]) for image in json.loads(body)["outputs"]]
    return best == [int(i) for i in logits.argmax(axis=1)]


class VisionWorkload(Workload[bytes]):
    domain = "vision"
    noun = "image"
    codec_label = "decode, crop, resize, normalise"
    v2_template = "apigw_http_v2_vision_classify"  # an HTTP API (v2) event of this domain; path replaced
    atol, rtol = 1e-4, 1e-4  # logits of magnitude ~10

    def items(self) -> Sequence[bytes]:
        return [chelsea_jpeg()] * BATCH

    def v2_input(self, manifest: ModelManifest, items: Sequence[bytes]) -> dict[str, Any]:
        name = manifest.inputs[0].name  # BYTES [-1]: base64 strings in V2 JSON
        return {"name": name, "shape": [len(items)], "datatype": "BYTES", "data": _b64(items)}

    def predict_inputs(self, manifest: ModelManifest, items: Sequence[bytes]) -> dict[str, Array]:
        batch = np.empty(len(items), dtype=object)
        batch[:] = [text.encode() for text in _b64(items)]  # as the V2 codec hands them over
        return {manifest.inputs[0].name: batch}

    def engine_feeds(self, runtime: ModelRuntime, items: Sequence[bytes]) -> Feeds:
        """The domain codec's [n, 3, size, size] tensor, as the runtime makes it."""
        from aimass_vision.codecs import decode, network_input

        vision = cast("ImageClassificationRuntime", runtime)
        images = (decode(data, vision.pre, where=f"image[{i}]") for i, data in enumerate(items))
        return {vision.fed: network_input(images, vision.pre)}

    def routes(self) -> tuple[Route[bytes], ...]:
        return (Route("classify", "/v1/vision/classify", self.v2_template, _classify_request, _classify_agrees),)

    def describe(self, runtime: ModelRuntime, item: bytes) -> dict[str, Any]:
        with Image.open(io.BytesIO(item)) as image:
            width, height = image.size
        return {
            "image": f"skimage.data.chelsea(), {width}x{height}, JPEG quality {JPEG_QUALITY}",
            "image_bytes": len(item),
        }

    def floor_spec(self, artifact: ModelArtifact, runtime: ModelRuntime, item: bytes, scratch: Path) -> dict[str, Any]:
        vision = cast("ImageClassificationRuntime", runtime)
        path = scratch / "vision-floor.jpg"
        path.write_bytes(item)
        return {"image": str(path), "feed": vision.fed, **vision.pre.model_dump(mode="json")}

    @staticmethod
    def floor_prepare(spec: dict[str, Any]) -> Callable[[], Feeds]:
        """The least a program must do with Pillow and numpy: decode, centre crop, resize, normalise."""
        data = Path(spec["image"]).read_bytes()
        size = spec["image_size"]
        mean, std = (np.asarray(spec[key], dtype=np.float32) for key in ("mean", "std"))

        def feeds() -> Feeds:
            image = Image.open(io.BytesIO(data)).convert("RGB")
            width, height = image.size
            side = max(1, int(spec["crop_fraction"] * min(width, height)))
            left, top = (width - side + 1) // 2, (height - side + 1) // 2
            square = image.crop((left, top, left + side, top + side))
            pixels = np.asarray(square.resize((size, size), _RESAMPLE[spec["resample"]]), dtype=np.float32)
            return {spec["feed"]: np.ascontiguousarray(((pixels - mean) / std).transpose(2, 0, 1)[None])}

        return feeds


WORKLOAD = VisionWorkload()
