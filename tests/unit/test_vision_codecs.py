"""The vision codecs: image bytes to the network's input, and every way a client's image can be refused."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from aimass.errors import InvalidInput
from aimass.serving.domains import checkout_domains
from tests.tiny_vision import PREPROCESSING, image_bytes

checkout_domains()

from aimass_vision.codecs import (  # noqa: E402
    VisionPreprocessing,
    crop_and_resize,
    decode,
    image_pixels,
    normalise,
    preprocess,
    softmax,
    unwrap_base64,
)

PRE = VisionPreprocessing.model_validate(PREPROCESSING)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def pixel(data: bytes) -> tuple[int, ...]:
    return tuple(int(v) for v in np.asarray(decode(data, PRE, where="image[0]"))[0, 0])


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size in its header and holds no pixels: a decompression bomb's first bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def noisy_jpeg() -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "JPEG")


def test_the_centre_crop_and_offsets_follow_the_reference_pipeline() -> None:
    # GIVEN a 10x4 image whose red value is the column and green value the row
    columns, rows = np.meshgrid(np.arange(10), np.arange(4))
    array = np.stack([columns * 10, rows * 10, np.zeros_like(rows)], axis=-1).astype(np.uint8)
    pre = PRE.model_copy(update={"image_size": 3})
    # WHEN it is cropped (side int(0.875 * 4) = 3, offsets ((10 - 3 + 1) // 2, (4 - 3 + 1) // 2) = (4, 1))
    crop = crop_and_resize(Image.fromarray(array), pre)
    # THEN the crop is columns 4-6 and rows 1-3, untouched because it already has the network's size
    assert crop.shape == (3, 3, 3) and crop.dtype == np.uint8
    assert crop[0, :, 0].tolist() == [40, 50, 60] and crop[:, 0, 1].tolist() == [10, 20, 30]


def test_tiny_images_are_scaled_up_to_the_network_size() -> None:
    assert crop_and_resize(Image.new("RGB", (1, 1), (9, 8, 7)), PRE).shape == (32, 32, 3)


def test_normalise_gives_nchw_float32_per_channel() -> None:
    pixels = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    pixels[..., 0] = 255
    pixels[1, ..., 2] = 127
    batch = normalise(pixels, PRE)
    assert batch.shape == (2, 3, 32, 32) and batch.dtype == np.float32 and batch.flags.c_contiguous
    assert batch[0, 0, 0, 0] == (255 - 127) / 128 and batch[0, 1, 0, 0] == -127 / 128 and batch[1, 2, 5, 5] == 0


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (image_bytes((1, 2, 3), fmt="JPEG", quality=100), (1, 2, 3)),
        (image_bytes((0, 0, 255), fmt="WEBP", lossless=True), (0, 0, 255)),
        (image_bytes(77, mode="L"), (77, 77, 77)),
        (image_bytes((0, 0), mode="LA"), (255, 255, 255)),  # fully transparent: white, not black
        (image_bytes((255, 0, 0, 0), mode="RGBA"), (255, 255, 255)),
        (image_bytes((255, 0, 0, 255), mode="RGBA"), (255, 0, 0)),
        (encode(Image.fromarray(np.full((4, 4), 40000, dtype=np.uint16)), "PNG"), (156, 156, 156)),  # 16 bit
    ],
)
def test_every_mode_becomes_rgb(data: bytes, expected: tuple[int, ...]) -> None:
    assert pixel(data) == pytest.approx(expected, abs=2)


def test_a_cmyk_jpeg_becomes_rgb() -> None:
    assert pixel(encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=100)) == pytest.approx(
        (255, 0, 0), abs=2
    )


def test_a_palette_with_a_transparent_entry_is_composited_over_white() -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 255, 0, 0])
    image.putpixel((1, 1), 1)
    decoded = np.asarray(decode(encode(image, "PNG", transparency=0), PRE, where="image[0]"))
    assert decoded[0, 0].tolist() == [255, 255, 255] and decoded[1, 1].tolist() == [255, 0, 0]


def test_an_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (6, 6), colour) for colour in ((0, 255, 0), (255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    assert pixel(data) == (0, 255, 0)


def test_exif_orientation_is_applied() -> None:
    # GIVEN a 4x2 JPEG whose EXIF says "rotate 90° to display" (orientation 6)
    image = Image.new("RGB", (4, 2), (255, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6
    # WHEN decoded THEN it is upright: 2 wide, 4 high
    assert decode(encode(image, "JPEG", exif=exif.tobytes()), PRE, where="image[0]").size == (2, 4)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "image[0] is empty; expected the bytes of a JPEG, PNG, WebP or GIF image"),
        (b"just some text\n", "image[0] is not an image this server reads; expected the bytes of a JPEG, PNG"),
        (image_bytes(fmt="BMP"), "image[0] is not an image this server reads"),  # Pillow reads it; we do not
        (image_bytes(fmt="TIFF"), "image[0] is not an image this server reads"),
        (image_bytes()[:60], "image[0] is a damaged PNG image"),
        (noisy_jpeg()[:1500], "image[0] is a damaged JPEG image: image file is truncated"),
        (bytes(20_001), "image[0] is 20001 bytes; at most 20000 are accepted"),
        (image_bytes(size=(600, 500)), "image[0] is 600x500 = 300000 pixels; at most 250000 are accepted"),
        (png_header_only(100_000, 100_000), "image[0] has more than 250000 pixels"),  # Pillow's own limit
        (png_header_only(5_000, 5_000), "image[0] is 5000x5000 = 25000000 pixels; at most 250000"),
    ],
)
def test_bad_images_are_refused_naming_the_image(data: bytes, expected: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode(data, PRE, where="image[0]")
    assert expected in caught.value.message and caught.value.param == "image[0]"
    with pytest.raises(InvalidInput) as served:  # what a request goes through: the same refusal
        preprocess(data, PRE, where="image[0]")
    assert served.value.message == caught.value.message


def progressive_jpeg(scans: int) -> bytes:
    """A progressive JPEG of ``scans`` scans: one of its AC scans repeated, a few bytes and one more pass each."""
    head, *parts = encode(Image.new("L", (64, 64)), "JPEG", progressive=True).split(b"\xff\xda")
    parts[-1] = parts[-1].removesuffix(b"\xff\xd9")
    parts += [parts[1]] * (scans - len(parts))  # parts[1]: the first AC scan (and the tables after it)
    return head + b"".join(b"\xff\xda" + part for part in parts) + b"\xff\xd9"


def test_a_jpeg_of_too_many_scans_is_refused_before_it_is_decoded() -> None:
    # 100 scans decode (each one more pass over every pixel); 101 are refused, by the header pass too
    assert preprocess(progressive_jpeg(100), PRE, where="image[0]").shape == (32, 32, 3)
    expected = "image[0] is a JPEG of 101 scans; at most 100 are accepted (progressive JPEGs have about 10)"
    for read in (preprocess, decode, image_pixels):
        with pytest.raises(InvalidInput) as caught:
            read(progressive_jpeg(101), PRE, where="image[0]")
        assert caught.value.message.startswith(expected) and caught.value.param == "image[0]"


def test_the_pixels_an_image_costs_are_read_from_its_header() -> None:
    # 5,000 x 4,000 pixels in a 1 kB PNG; the per-image limit lifted, so that only the header is read
    roomy = PRE.model_copy(update={"max_pixels": 50_000_000})
    assert image_pixels(png_header_only(5_000, 4_000), roomy, where="image[0]") == 20_000_000
    with pytest.raises(InvalidInput, match="image\\[3\\] is 5000x5000 = 25000000 pixels; at most 250000"):
        image_pixels(png_header_only(5_000, 5_000), PRE, where="image[3]")


def _modes() -> dict[str, bytes]:
    """An image in every mode and format a client may send, not square, with noise in every channel."""
    rng = np.random.default_rng(2)
    base = Image.fromarray(rng.integers(0, 256, (61, 97, 3), dtype=np.uint8))
    rgba = np.asarray(base.convert("RGBA")).copy()
    rgba[..., 3] = rng.integers(0, 256, rgba.shape[:2])
    alpha = Image.fromarray(rgba)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the crop is taken after the rotation
    return {
        "PNG RGB": encode(base, "PNG"),
        "PNG L": encode(base.convert("L"), "PNG"),
        "PNG 1-bit": encode(base.convert("1"), "PNG"),
        "PNG P": encode(base.convert("P"), "PNG"),
        "PNG P transparent": encode(base.convert("P"), "PNG", transparency=3),
        "PNG RGBA": encode(alpha, "PNG"),
        "PNG LA": encode(alpha.convert("LA"), "PNG"),
        "PNG 16-bit": encode(Image.fromarray(rng.integers(0, 65536, (61, 97)).astype(np.uint16)), "PNG"),
        "JPEG RGB": encode(base, "JPEG"),
        "JPEG L": encode(base.convert("L"), "JPEG"),
        "JPEG CMYK": encode(base.convert("CMYK"), "JPEG"),
        "JPEG rotated": encode(base, "JPEG", exif=exif.tobytes()),
        "WebP RGBA": encode(alpha, "WEBP", lossless=True),
        "GIF": encode(base, "GIF"),
        "GIF transparent": encode(base.convert("P"), "GIF", transparency=5),
    }


@pytest.mark.parametrize("image_size", [32, 224])
@pytest.mark.parametrize("kind", list(_modes()))
def test_preprocess_gives_exactly_the_pixels_of_decode_then_crop_and_resize(kind: str, image_size: int) -> None:
    # GIVEN an image of one mode, and the two paths: the full-size RGB image cropped (what the model build
    # measures its quality through), and the crop converted to RGB (what a request gets, with smaller copies)
    pre = PRE.model_copy(update={"image_size": image_size, "max_image_bytes": 1 << 20})
    data = _modes()[kind]
    # WHEN each prepares it THEN the network gets the same bytes
    expected = crop_and_resize(decode(data, pre, where="image[0]"), pre)
    np.testing.assert_array_equal(preprocess(data, pre, where="image[0]"), expected)


def test_base64_text_is_unwrapped_and_raw_images_are_not() -> None:
    png = image_bytes()
    text = base64.b64encode(png)
    assert unwrap_base64(text) == png
    assert unwrap_base64(text[:40] + b"\n" + text[40:] + b"\n") == png  # wrapped lines, as base64(1) writes
    assert unwrap_base64(png) == png
    assert unwrap_base64(b"abc") == b"abc"  # alphabet only, but not base64: left for the decoder to refuse


def test_softmax_is_stable_and_sums_to_one() -> None:
    probabilities = softmax(np.array([[1000.0, 1000.0, 0.0], [0.0, 1.0, 2.0]], dtype=np.float32))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert probabilities[0, 0] == pytest.approx(0.5) and probabilities[1].argmax() == 2


def test_corrupted_images_are_refused_or_decoded_never_anything_else() -> None:
    # GIVEN valid images of every served format and mode, corrupted by seeded truncations and byte flips
    base = Image.fromarray(np.random.default_rng(1).integers(0, 256, (24, 30, 3), dtype=np.uint8))
    seeds = [
        encode(base, "PNG"),
        encode(base, "JPEG", progressive=True),
        encode(base, "WEBP"),
        encode(base, "GIF", save_all=True, append_images=[base.rotate(90)]),
        encode(base.convert("P"), "PNG", transparency=3),
        encode(base.convert("CMYK"), "JPEG"),
    ]
    rng = np.random.default_rng(0)
    outcomes = {"decoded": 0, "refused": 0}
    for _ in range(600):
        data = bytearray(seeds[rng.integers(len(seeds))])
        if rng.random() < 0.3:
            data = data[: rng.integers(len(data))]
        else:
            for position in rng.integers(len(data), size=rng.integers(1, 8)):
                data[position] = rng.integers(256)
        # WHEN each is decoded and prepared THEN it is an RGB image for the network, or an InvalidInput,
        # and the path a request takes agrees
        try:
            image = decode(bytes(data), PRE, where="image[0]")
        except InvalidInput:
            outcomes["refused"] += 1
            with pytest.raises(InvalidInput):
                preprocess(bytes(data), PRE, where="image[0]")
            continue
        assert image.mode == "RGB" and crop_and_resize(image, PRE).shape == (32, 32, 3)
        np.testing.assert_array_equal(preprocess(bytes(data), PRE, where="image[0]"), crop_and_resize(image, PRE))
        outcomes["decoded"] += 1
    assert outcomes["refused"] > 100 and outcomes["decoded"] > 100
