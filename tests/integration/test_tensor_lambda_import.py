"""A model imported through the tensor function's Lambda handler, as on AWS, then answered by it.

The handler runs as its image runs it on AWS: no model baked in, the model store in an S3 bucket under the imported
models' prefix, tenants' files in another bucket (both on moto's server over HTTP), keys checked. GIVEN a model file
a pipeline uploaded, WHEN generated API Gateway events import it through the management API and then call it, THEN
the version lands under ``imported/`` and the same container answers it at once.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from aimass.contract import IMPORTED_MODELS_PREFIX
from aimass.files.factory import open_files
from aimass.lambda_context import LocalLambdaContext
from aimass.metering.key_admin import create_key
from aimass.metering.stores.key_factory import open_key_store
from aimass.settings import DEFAULT_PLANS, Settings, get_settings
from tests import tiny_imports as tiny
from tests.conftest import import_handler, load_event, response_body
from tests.moto_server import MotoServer

MODELS, FILES = "aimass-models", "aimass-files"


@pytest.fixture
def deployed(moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, str, Settings]:
    models, files = moto.bucket(MODELS), moto.bucket(FILES)
    assert models is not None and files is not None
    environment = {
        **moto.environment(),
        "AIMASS_AWS_ENDPOINT_URL": moto.endpoint,
        "AIMASS_MODEL_BUCKET": MODELS,
        "AIMASS_MODEL_PREFIX": IMPORTED_MODELS_PREFIX,
        "AIMASS_FILES_BUCKET": FILES,
        "AIMASS_METERING": "sqlite",
        "AIMASS_STATE_DIR": str(tmp_path / "state"),
        "AIMASS_CACHE_DIR": str(tmp_path / "cache"),
        "AIMASS_IMPORT_MEMORY_MB": "3538",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    settings = Settings()
    key = create_key(
        open_key_store(settings), tenant="pipeline", scopes=("invoke", "admin"), plan="default", plans=DEFAULT_PLANS,
        now=datetime.now(UTC),
    ).clear_text  # fmt: skip
    (tmp_path / "baked").mkdir()  # the image bakes no imported model
    return import_handler(tmp_path / "baked", monkeypatch, domain="tensor"), key, settings


def event(path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
    recorded = load_event("apigw_http_v2_tensor_infer")
    text = json.dumps(body)
    recorded["rawPath"] = recorded["requestContext"]["http"]["path"] = path
    recorded["body"] = text
    recorded["headers"] |= {"content-length": str(len(text)), "authorization": f"Bearer {key}"}
    return recorded


def test_a_file_is_imported_and_answered_through_the_lambda_handler(
    deployed: tuple[ModuleType, str, Settings], moto: MotoServer
) -> None:
    handler, key, settings = deployed
    # GIVEN a model file uploaded by a pipeline (POST /v1/files on the front function, into the files bucket)
    uploaded = open_files(settings).put(
        "pipeline", io.BytesIO(tiny.mlp(seed=21)), filename="model.onnx", purpose="model", limit=1 << 20
    )
    context = LocalLambdaContext()
    # WHEN the management API's event imports it
    response = handler.handler(event("/v1/admin/models", {"name": "checkpoint", "file_id": uploaded.id}, key), context)
    assert response["statusCode"] == 201, response
    body = json.loads(response_body(response))
    assert body["version"]["version"] == "1" and body["version"]["tenant"] == "pipeline"
    # THEN the version lies under the imported models' prefix of the model bucket...
    stored = moto.client("s3").list_objects_v2(Bucket=MODELS, Prefix=f"{IMPORTED_MODELS_PREFIX}checkpoint/1/")
    assert {item["Key"].rsplit("/", 1)[1] for item in stored["Contents"]} >= {
        "manifest.json",
        "model.onnx",
        "samples.json",
    }
    # ...and the same container answers it at once
    rows = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [[1.0, 2.0, 3.0, 4.0]]}]}
    answered = handler.handler(event("/v2/models/checkpoint/infer", rows, key), context)
    assert answered["statusCode"] == 200, answered
    assert json.loads(response_body(answered))["model_version"] == "1"
