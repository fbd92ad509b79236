"""Image bytes in, the network's input tensor out: the one preprocessing the server and the model builds share.

The build measures quality through these functions, so what it checks is what a request gets. Pillow and
numpy only: the function image carries no training framework. Every problem with an image a client sent is
an InvalidInput that names the image (``where``) and says what was expected.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Iterable
from typing import Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps
from pydantic import ConfigDict, Field

from aimass.errors import InvalidInput
from aimass.schema import Schema

FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
EXPECTED = "the bytes of a JPEG, PNG, WebP or GIF image"
_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_WHITESPACE = b" \t\r\n"
# A request's decoding budget, read from its images' headers before any is decoded: see
# functions/vision/function.toml for the measurements behind it.
MAX_REQUEST_PIXELS = 100_000_000
MAX_JPEG_SCANS = 100
_SOS = b"\xff\xda"  # a JPEG's start-of-scan marker
_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


class VisionPreprocessing(Schema):
    """The ``preprocessing`` block of an image model's manifest: how its training pipeline fed the network."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    image_size: int = Field(gt=0, description="the square side the network takes, e.g. 224")
    crop_fraction: float = Field(gt=0, le=1, description="centre crop side as a fraction of the shorter side")
    resample: Literal["bicubic", "bilinear"] = "bicubic"
    mean: tuple[float, float, float] = Field(description="per RGB channel, on 0-255 values")
    std: tuple[float, float, float] = Field(description="per RGB channel, on 0-255 values")
    max_image_bytes: int = Field(default=8 << 20, gt=0, description="largest encoded image accepted")
    max_pixels: int = Field(default=50_000_000, gt=0, description="most pixels (width x height) in one image")
    max_request_pixels: int = Field(
        default=MAX_REQUEST_PIXELS,
        gt=0,
        description="most pixels decoded for one request, summed over its images (functions/vision/function.toml)",
    )


def unwrap_base64(data: bytes) -> bytes:
    """The image inside ``data`` if it is base64 text (V2 JSON carries BYTES as strings), else ``data``.

    Encoded images always hold bytes outside the base64 alphabet, so the two cannot be confused.
    """
    if data and not data.translate(None, _BASE64 + _WHITESPACE):
        try:
            return base64.b64decode(data.translate(None, _WHITESPACE), validate=True)
        except binascii.Error:
            pass  # not base64 after all; the decoder below says what it is not
    return data


def open_image(data: bytes, pre: VisionPreprocessing, *, where: str) -> Image.Image:
    """An image's header, read and checked (bytes, format, pixels); its pixels are not decoded yet."""
    if not data:
        raise InvalidInput(f"{where} is empty; expected {EXPECTED}", param=where)
    if len(data) > pre.max_image_bytes:
        raise InvalidInput(f"{where} is {len(data)} bytes; at most {pre.max_image_bytes} are accepted", param=where)
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
    except Image.DecompressionBombError:
        raise InvalidInput(f"{where} has more than {pre.max_pixels} pixels, the most accepted", param=where) from None
    except Exception:  # UnidentifiedImageError, or a header that a format's parser chokes on
        raise InvalidInput(f"{where} is not an image this server reads; expected {EXPECTED}", param=where) from None
    check_pixels(*image.size, pre, where=where)
    # Each scan of a progressive JPEG is one more pass over every pixel, and can take 31 bytes: 6 MB of them
    # would decode one 16-megapixel image for minutes. Libjpeg's encoders write 6 to 10; mozjpeg's a few more.
    # Entropy-coded data never holds the SOS marker (0xFF is stuffed), so counting it counts scans, and the
    # scans of any thumbnail in its EXIF.
    if image.format == "JPEG" and (scans := data.count(_SOS)) > MAX_JPEG_SCANS:
        raise InvalidInput(
            f"{where} is a JPEG of {scans} scans; at most {MAX_JPEG_SCANS} are accepted (progressive JPEGs have "
            "about 10): re-encode it",
            param=where,
        )
    return image


def image_pixels(data: bytes, pre: VisionPreprocessing, *, where: str) -> int:
    """Width x height from the header: what decoding the image will cost, known before it is decoded."""
    image = open_image(data, pre, where=where)
    image.close()
    return image.width * image.height


def decode(data: bytes, pre: VisionPreprocessing, *, where: str) -> Image.Image:
    """An RGB image from encoded bytes: first frame, EXIF orientation applied, transparency over white.

    Full size: the model build measures quality through this and ``network_input``; requests go through
    ``preprocess``, which gives the same pixels without keeping a full-size RGB copy.
    """
    image = open_image(data, pre, where=where)
    try:
        image.load()
        return to_rgb(ImageOps.exif_transpose(image))
    except Exception as exc:  # Pillow's decoders raise many types (OSError, ValueError, SyntaxError, ...)
        raise InvalidInput(f"{where} is a damaged {image.format} image: {exc}", param=where) from None


def preprocess(data: bytes, pre: VisionPreprocessing, *, where: str) -> npt.NDArray[np.uint8]:
    """One encoded image straight to what the network takes, UINT8 ``[size, size, 3]``.

    The same pixels as ``crop_and_resize(decode(...))``: the conversions to RGB (grey, palette, 16 bits,
    CMYK, transparency over white) are per pixel, so cropping first changes nothing but the size of the
    copies. The full-size image is freed before this returns, so a request never holds more than one.
    """
    image = open_image(data, pre, where=where)
    kind = image.format
    try:
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        square = centre_square(image, pre)
        # The full-size pixels go now, before the square is converted, and a decoder's own copy with them
        # (WebP's keeps a full-size canvas until its image is freed; close() leaves it).
        del image
        rgb = to_rgb(square)
        del square
    except Exception as exc:  # Pillow's decoders raise many types (OSError, ValueError, SyntaxError, ...)
        raise InvalidInput(f"{where} is a damaged {kind} image: {exc}", param=where) from None
    return resize(rgb, pre)


def check_pixels(width: int, height: int, pre: VisionPreprocessing, *, where: str) -> None:
    # Checked before decoding: a few kilobytes of PNG can decode to gigabytes of pixels.
    if width * height > pre.max_pixels:
        raise InvalidInput(
            f"{where} is {width}x{height} = {width * height} pixels; at most {pre.max_pixels} are accepted",
            param=where,
        )


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "I;16", "I;16B"):  # 16-bit grayscale PNG: Pillow would clip it to 8 bits, not scale
        image = Image.fromarray((np.clip(np.asarray(image), 0, 65535) >> 8).astype(np.uint8))
    if image.has_transparency_data:
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")  # no copy of what is RGBA already
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return image.convert("RGB")  # grayscale, palette, CMYK, YCbCr


def crop_and_resize(image: Image.Image, pre: VisionPreprocessing) -> npt.NDArray[np.uint8]:
    """The centre square of ``crop_fraction`` of the shorter side, resized: UINT8 ``[size, size, 3]``."""
    return resize(centre_square(image, pre), pre)


def centre_square(image: Image.Image, pre: VisionPreprocessing) -> Image.Image:
    """The centre square of ``crop_fraction`` of the shorter side (a copy, in the image's own mode)."""
    width, height = image.size
    side = max(1, int(pre.crop_fraction * min(width, height)))
    left, top = (width - side + 1) // 2, (height - side + 1) // 2
    return image.crop((left, top, left + side, top + side))


def resize(square: Image.Image, pre: VisionPreprocessing) -> npt.NDArray[np.uint8]:
    resized = square.resize((pre.image_size, pre.image_size), _RESAMPLE[pre.resample])
    return np.asarray(resized, dtype=np.uint8)


def normalise(pixels: npt.NDArray[np.uint8], pre: VisionPreprocessing) -> npt.NDArray[np.float32]:
    """UINT8 ``[n, size, size, 3]`` to the network's FP32 ``[n, 3, size, size]``: ``(x - mean) / std``."""
    mean = np.asarray(pre.mean, dtype=np.float32)
    std = np.asarray(pre.std, dtype=np.float32)
    scaled = (pixels.astype(np.float32) - mean) / std
    return np.ascontiguousarray(scaled.transpose(0, 3, 1, 2))


def network_input(images: Iterable[Image.Image], pre: VisionPreprocessing) -> npt.NDArray[np.float32]:
    """Decoded images to one batch for the network."""
    return normalise(np.stack([crop_and_resize(image, pre) for image in images]), pre)


def softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]
