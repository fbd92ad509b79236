"""Per-request work budgets through the app: what a small request may make a function decode or tokenise.

A few kilobytes of PNG decode to billions of pixels, and a string of megabytes is tokenised whole before it
is truncated to a few hundred tokens. Each budget is checked from what is known before the expensive step
(image headers, a character count), and each image is decoded straight into the network's small square.
"""

from __future__ import annotations

import base64
import io
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFile

from aimass.http.app import build_app
from aimass.serving.registry import ModelRegistry
from aimass.serving.session import SessionFactory
from aimass.settings import Settings
from aimass.store.local import LocalModelStore
from aimass.store.manifest import TensorSpec
from bench.budgets import v2_binary as v2_binary_body
from tests.tiny_models import TINY_TEXT, build_tiny_text, reference_embedding
from tests.tiny_vision import PREPROCESSING, SIZE, build_tiny_vision, image_bytes, reference_logits

VISION = "budget-vision"  # the real model's per-image limits and pixel budget
SMALL = "small-budget-vision"  # a budget of three 1200x900 images
PIXELS = "pixels-vision"  # decoded UINT8 pixels in, with a budget of 1,000 pixels
SIDE = 7000  # 49 million pixels: under the 50 million one image may have
SMALL_BUDGET = 3 * 1200 * 900
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    store: Path = tmp_path_factory.mktemp("budget-store")
    real_limits = {**PREPROCESSING, "max_image_bytes": 8 << 20, "max_pixels": 50_000_000}
    build_tiny_vision(store, VISION, preprocessing=real_limits)
    build_tiny_vision(store, SMALL, preprocessing={**real_limits, "max_request_pixels": SMALL_BUDGET})
    pixels_in = (TensorSpec(name="pixels", datatype="UINT8", shape=(-1, -1, -1, 3)),)
    build_tiny_vision(store, PIXELS, inputs=pixels_in, preprocessing={**PREPROCESSING, "max_request_pixels": 1000})
    build_tiny_text(store)
    settings = Settings(model_store=store, domains=("vision", "text"))
    models = ModelRegistry(LocalModelStore(store), SessionFactory(settings), domains=("vision", "text"))
    models.load_all()
    return models


@pytest.fixture(scope="module")
def client(registry: ModelRegistry) -> Iterator[TestClient]:
    settings = Settings(model_store=Path("unused"), domains=("vision", "text"))  # the default 6 MiB body
    with TestClient(build_app(settings, registry=registry), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def one_bit_png() -> bytes:
    """A 1-bit PNG of 7000x7000 pixels in 6 kB: what decodes to 196 MB as RGB."""
    out = io.BytesIO()
    Image.new("1", (SIDE, SIDE)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def grey_png() -> bytes:
    """A grayscale PNG of 7000x7000 pixels in 48 kB."""
    out = io.BytesIO()
    Image.new("L", (SIDE, SIDE)).save(out, format="PNG")
    return out.getvalue()


class Decoded:
    """Watches Pillow: the images it decodes, and the most images larger than the network's square (full
    size, or a crop of one) alive when an image starts to decode, itself included.

    Every Pillow image, decoded, converted, cropped or copied, goes through ``Image.Image.__init__``; freed
    ones are dead weak references, with no garbage collection run in between.
    """

    def __init__(self) -> None:
        self.created: list[weakref.ref[Image.Image]] = []
        self.decoded: list[weakref.ref[Image.Image]] = []
        self.most_alive = 0

    def decoding(self, image: Image.Image) -> None:
        if any(ref() is image for ref in self.decoded):
            return  # load() again on an image already decoded: a no-op
        self.decoded.append(weakref.ref(image))
        alive = [other for ref in self.created if (other := ref()) is not None and other is not image]
        large = [other for other in alive if other.width * other.height > SIZE * SIZE]
        self.most_alive = max(self.most_alive, 1 + len(large))


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> Decoded:
    watch, init, load = Decoded(), Image.Image.__init__, ImageFile.ImageFile.load

    def created(self: Image.Image) -> None:
        init(self)
        watch.created.append(weakref.ref(self))

    def loaded(self: ImageFile.ImageFile) -> Any:
        watch.decoding(self)
        return load(self)

    monkeypatch.setattr(Image.Image, "__init__", created)
    monkeypatch.setattr(ImageFile.ImageFile, "load", loaded)
    return watch


def v2_binary(model: str, images: list[bytes]) -> tuple[str, bytes, dict[str, str]]:
    body, headers = v2_binary_body(images)
    return f"/v2/models/{model}/infer", body, headers


def error_of(response: Any, status: int) -> dict[str, Any]:
    """The error of a task route's response ({"error": {"message", "code", "param", ...}})."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def v2_error(response: Any, status: int) -> str:
    """The message of a V2 route's error: the Open Inference Protocol's {"error": "<message>"}."""
    assert response.status_code == status, response.text
    message: str = response.json()["error"]
    return message


# --- Vision: pixels decoded -------------------------------------------------------------------------------


def test_the_probes_v2_binary_request_is_a_413_before_any_image_is_decoded(
    client: TestClient, one_bit_png: bytes, decoded: Decoded
) -> None:
    # GIVEN the request that took a vision function from 558 MB to 6.8 GB: 32 copies of a 6 kB 1-bit PNG
    # of 7000x7000, each under the 50 million pixels one image may have, 193 kB on the wire
    path, body, headers = v2_binary(VISION, [one_bit_png] * 32)
    assert len(one_bit_png) < 7_000 and len(body) < 200_000
    # WHEN it is inferred with the binary tensor extension
    response = client.post(path, content=body, headers=headers)
    # THEN it is refused, naming the budget, the request's pixels and what to do, and nothing was decoded
    assert v2_error(response, 413) == (
        "'image' holds 1,568,000,000 pixels (width x height, summed over its images), over the per-request limit "
        "of 100,000,000 pixels; split the request into smaller ones"
    )
    assert decoded.decoded == []


def test_the_probes_classify_request_is_a_413_before_any_image_is_decoded(
    client: TestClient, grey_png: bytes, decoded: Decoded
) -> None:
    # GIVEN 32 grayscale PNGs of 7000x7000 pixels, 48 kB each, as base64 JSON
    images = [base64.b64encode(grey_png).decode()] * 32
    # WHEN they are classified
    response = client.post("/v1/vision/classify", json={"model": VISION, "images": images})
    # THEN the request is refused on its images, before one is decoded
    error = error_of(response, 413)
    assert (error["code"], error["param"]) == ("payload_too_large", "images")
    assert error["message"].startswith("'images' holds 1,568,000,000 pixels (width x height, summed over its images)")
    assert decoded.decoded == []


def test_a_bad_image_anywhere_is_found_before_any_is_decoded(client: TestClient, decoded: Decoded) -> None:
    path, body, headers = v2_binary(VISION, [image_bytes(RED)] * 3 + [b"not an image"])
    message = v2_error(client.post(path, content=body, headers=headers), 400)
    assert message.startswith("image[3] is not an image this server reads")
    assert decoded.decoded == []


def test_a_request_within_the_budget_decodes_one_image_at_a_time(client: TestClient, decoded: Decoded) -> None:
    # GIVEN ten 1200x900 images (10.8 million pixels), of the three colours the tiny model knows
    colours = [RED, GREEN, BLUE, RED, GREEN, BLUE, RED, GREEN, BLUE, RED]
    images = [image_bytes(colour, size=(1200, 900)) for colour in colours]
    path, body, headers = v2_binary(VISION, images)
    # WHEN they are inferred, and classified
    inferred = client.post(path, content=body, headers=headers)
    classified = client.post(
        "/v1/vision/classify", json={"model": VISION, "images": [base64.b64encode(i).decode() for i in images]}
    )
    # THEN both are answered as before, each image decoded once, and never two full-size images alive at once
    assert inferred.status_code == 200, inferred.text
    (output,) = inferred.json()["outputs"]
    logits = np.array(output["data"], dtype=np.float32).reshape(len(colours), 3)
    np.testing.assert_allclose(logits, np.stack([reference_logits(c) for c in colours]), atol=1e-5)
    assert classified.status_code == 200, classified.text
    names = {RED: "red", GREEN: "green", BLUE: "blue"}
    assert [ranked[0]["label"] for ranked in classified.json()["outputs"]] == [names[c] for c in colours]
    assert len(decoded.decoded) == 2 * len(images)
    assert decoded.most_alive == 1


def test_the_budget_is_the_sum_of_the_images_pixels(client: TestClient) -> None:
    # GIVEN a model whose budget is three 1200x900 images
    three = [image_bytes(RED, size=(1200, 900))] * 3
    # WHEN three are sent, and four
    path, body, headers = v2_binary(SMALL, three)
    within = client.post(path, content=body, headers=headers)
    path, body, headers = v2_binary(SMALL, [*three, image_bytes(BLUE, size=(900, 1200))])
    over = client.post(path, content=body, headers=headers)
    # THEN three are served and four are a 413
    assert within.status_code == 200, within.text
    assert v2_error(over, 413) == (
        "'image' holds 4,320,000 pixels (width x height, summed over its images), over the per-request limit of "
        "3,240,000 pixels; split the request into smaller ones"
    )


def test_decoded_pixels_count_against_the_budget_too(client: TestClient) -> None:
    pixels = np.zeros((2, 30, 30, 3), dtype=np.uint8).tolist()  # 1,800 pixels for a budget of 1,000
    tensor = {"name": "pixels", "datatype": "UINT8", "shape": [2, 30, 30, 3], "data": pixels}
    message = v2_error(client.post(f"/v2/models/{PIXELS}/infer", json={"inputs": [tensor]}), 413)
    assert message.startswith("'pixels' holds 1,800 pixels")


# --- Text: characters tokenised ---------------------------------------------------------------------------


class WatchedTokenizer:
    """The runtime's tokenizer, recording the longest string it is given."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer, self.longest = tokenizer, 0

    def encode_batch(self, texts: list[str]) -> Any:
        self.longest = max(self.longest, *(len(text) for text in texts))
        return self.tokenizer.encode_batch(texts)

    def encode(self, text: str) -> Any:  # one string alone
        self.longest = max(self.longest, len(text))
        return self.tokenizer.encode(text)


def test_a_string_of_megabytes_is_cut_before_it_is_tokenised(
    client: TestClient, registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the tiny model (16 tokens kept per string) whose tokenizer is watched, and a 5.9 MB string
    runtime: Any = registry.get(TINY_TEXT)
    watched = WatchedTokenizer(runtime.tokenizer)
    monkeypatch.setattr(runtime, "tokenizer", watched)
    text = ("the cat sat on the mat " * 260_000)[:5_900_000]
    # WHEN it is embedded
    response = client.post("/v1/embeddings", json={"model": TINY_TEXT, "input": text})
    # THEN the tokenizer saw at most max_length x chars_per_token characters, and the answer is the one the
    # whole string gets: its first 16 tokens, 16 billed
    assert response.status_code == 200, response.text
    assert watched.longest <= 16 * runtime.pre.chars_per_token
    body = response.json()
    assert body["usage"] == {"prompt_tokens": 16, "total_tokens": 16}
    embedding = np.array(body["data"][0]["embedding"], dtype=np.float32)
    np.testing.assert_allclose(embedding, reference_embedding(text), atol=1e-6)
