"""Encoded images in, an image classifier's input out, as its manifest's ``image`` block says.

Pillow is imported with the first image: a model that takes no images never pays for it in a cold start. Every
problem with an image is an InvalidInput that names it (``where``); each image's pixels are read from its header
and the request's sum held to ``max_request_pixels`` before any is decoded (``aimass.serving.batching``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from aimass.errors import InvalidInput
from aimass.serving.runtime import Tensor
from aimass_tensor.preprocessing import ImageInput

if TYPE_CHECKING:
    from PIL import Image

FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
EXPECTED = "the bytes of a JPEG, PNG, WebP or GIF image"


def opened(data: bytes, spec: ImageInput, *, where: str) -> Image.Image:
    """One image, raw or base64 (V2 JSON carries BYTES as text): its header, read and checked."""
    from PIL import Image

    with contextlib.suppress(binascii.Error, ValueError):
        data = base64.b64decode(data, validate=True)  # encoded images are never valid base64
    if not data:
        raise InvalidInput(f"{where} is empty; expected {EXPECTED}", param=where)
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
    except Exception:  # UnidentifiedImageError, a decompression bomb, a header a parser chokes on
        raise InvalidInput(f"{where} is not an image this server reads; expected {EXPECTED}", param=where) from None
    if image.width * image.height > spec.max_pixels:  # a small file can hold a huge image
        raise InvalidInput(
            f"{where} has {image.width}x{image.height} pixels; at most {spec.max_pixels} are accepted", param=where
        )
    return image


def area(data: bytes, spec: ImageInput, *, where: str) -> int:
    image = opened(data, spec, where=where)
    return int(image.width * image.height)


def pixels(data: bytes, spec: ImageInput, *, where: str) -> Tensor:
    """One image as the graph's input row: ``[C, H, W]`` or ``[H, W, C]`` float32."""
    from PIL import Image

    image = opened(data, spec, where=where)
    try:
        converted = image.convert("RGB" if spec.channels == 3 else "L")
        resized = converted.resize((spec.width, spec.height), Image.Resampling.BILINEAR)
    except Exception as exc:  # Pillow's decoders raise many types (OSError, ValueError, SyntaxError, ...)
        raise InvalidInput(f"{where} is a damaged {image.format} image: {exc}", param=where) from None
    values: npt.NDArray[np.float32] = np.asarray(resized, dtype=np.float32).reshape(
        spec.height, spec.width, spec.channels
    )
    values = (values * np.float32(spec.scale) - _per_channel(spec.mean, spec)) / _per_channel(spec.std, spec)
    return values.transpose(2, 0, 1) if spec.layout == "NCHW" else values


def _per_channel(values: tuple[float, ...], spec: ImageInput) -> npt.NDArray[np.float32]:
    return np.resize(np.asarray(values, dtype=np.float32), spec.channels)
