"""The real EfficientNet-Lite0 model through the real entry points: HTTP (V2 and classify) and the Lambda handler."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.lambda_context import LocalLambdaContext
from aimass.settings import Settings
from tests.conftest import ROOT, import_handler, load_event, load_script
from tests.functional.test_vision_lambda import REAL_MODEL

pytestmark = pytest.mark.real_model
CATS = {281, 282, 285}  # tabby, tiger cat, Egyptian cat


@pytest.fixture(scope="module")
def vision_model_store() -> Path:
    """The real vision model, built once per checkout by its own build script (a no-op when present)."""
    module = load_script(ROOT / "models/vision/efficientnet_lite0/build.py", "efficientnet_lite0_build")
    store = ROOT / "model_store"
    module.build(store)
    return store


@pytest.fixture(scope="module")
def real_client(vision_model_store: Path) -> Iterator[TestClient]:
    with TestClient(build_app(Settings(model_store=vision_model_store, domains=("vision",)))) as client:
        yield client


@pytest.fixture(scope="module")
def chelsea() -> bytes:
    """scikit-image's photo of Chelsea the cat, as the PNG file it ships."""
    import skimage.data

    return (Path(skimage.data.__file__).parent / "chelsea.png").read_bytes()


def test_the_cat_photo_is_a_cat_through_v2_binary(real_client: TestClient, chelsea: bytes) -> None:
    # GIVEN the PNG's raw bytes in the binary tensor extension
    blob = len(chelsea).to_bytes(4, "little") + chelsea
    header = json.dumps(
        {
            "inputs": [
                {"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(blob)}}
            ]
        }
    ).encode()
    # WHEN it is inferred
    response = real_client.post(
        f"/v2/models/{REAL_MODEL}/infer",
        content=header + blob,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    # THEN the most likely of the 1000 ImageNet classes is a cat
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert output["shape"] == [1, 1000]
    assert int(np.argmax(output["data"])) in CATS


def test_served_logits_reproduce_the_pytorch_samples(real_client: TestClient, vision_model_store: Path) -> None:
    # samples.json holds base64 JPEGs, as a V2 JSON client sends them, and PyTorch's logits for them.
    samples = json.loads((vision_model_store / REAL_MODEL / "1" / "samples.json").read_text())
    images = samples["inputs"]["image"]
    response = real_client.post(
        f"/v2/models/{REAL_MODEL}/infer",
        json={"inputs": [{"name": "image", "datatype": "BYTES", "shape": [len(images)], "data": images}]},
    )
    assert response.status_code == 200, response.text
    served = np.array(response.json()["outputs"][0]["data"], dtype=np.float32).reshape(len(images), 1000)
    reference = np.array(samples["outputs"]["logits"], dtype=np.float32)
    assert np.abs(served - reference).max() <= samples["tolerance"]["max_abs_diff"]
    assert (served.argmax(axis=1) == reference.argmax(axis=1)).all()


def test_classify_names_the_cat(real_client: TestClient, chelsea: bytes) -> None:
    response = real_client.post("/v1/vision/classify", files=[("images", ("chelsea.png", chelsea))])
    assert response.status_code == 200, response.text
    (answer,) = response.json()["outputs"]
    assert len(answer) == 5 and answer[0]["index"] in CATS
    assert answer[0]["label"] in {"tabby, tabby cat", "tiger cat", "Egyptian cat"}
    assert sum(entry["index"] in CATS for entry in answer[:3]) == 3  # the three cat classes lead


def test_lambda_handler_classifies_the_cat(
    vision_model_store: Path,
    chelsea: bytes,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: LocalLambdaContext,
) -> None:
    module = import_handler(vision_model_store, monkeypatch, "vision")
    # GIVEN the generated events with the cat photo in place of their plain-colour images
    image = base64.b64encode(chelsea).decode()
    classify = load_event("apigw_http_v2_vision_classify")
    classify["body"] = json.dumps({"images": [image], "top_k": 3})
    infer = load_event("apigw_rest_v1_vision_infer")
    # The REST API passes every body base64-encoded (binary media types */*).
    sent = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [image]}]})
    infer["body"] = base64.b64encode(sent.encode()).decode()
    # WHEN the handler answers them THEN both say cat
    answered = module.handler(classify, lambda_context)
    assert answered["statusCode"] == 200, answered
    assert json.loads(answered["body"])["outputs"][0][0]["index"] in CATS
    inferred = module.handler(infer, lambda_context)
    assert inferred["statusCode"] == 200, inferred
    assert int(np.argmax(json.loads(inferred["body"])["outputs"][0]["data"])) in CATS
