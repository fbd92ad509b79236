"""Where sessions run (AIMASS_ACCELERATOR), through the app: the CPU here, where ONNX Runtime has no CUDA.

GIVEN this machine's ONNX Runtime (the CPU build, no CUDA execution provider), WHEN the app loads a model with
the accelerator on auto, THEN it serves from the CPU; WHEN CUDA is required, THEN the model is not served and
the repository index says why, in the version's own terms.
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.settings import Settings
from tests.tiny_models import TINY_TEXT


def test_auto_runs_on_the_cpu_where_there_is_no_cuda(tiny_store: Path) -> None:
    assert "CUDAExecutionProvider" not in ort.get_available_providers()
    with TestClient(build_app(Settings(model_store=tiny_store, accelerator="auto"))) as client:
        answer = client.post("/v1/embeddings", json={"model": TINY_TEXT, "input": "a cat"})
        assert answer.status_code == 200


def test_required_cuda_without_a_gpu_is_refused_with_the_reason(tiny_store: Path) -> None:
    with TestClient(build_app(Settings(model_store=tiny_store, accelerator="cuda"))) as client:
        assert client.get(f"/v2/models/{TINY_TEXT}/ready").status_code != 200
        index = {model["name"]: model for model in client.post("/v2/repository/index").json()}
        assert index[TINY_TEXT]["state"] == "UNAVAILABLE"
        assert "no GPU is available" in index[TINY_TEXT]["reason"]
        refused = client.post("/v1/embeddings", json={"model": TINY_TEXT, "input": "a cat"})
        assert refused.status_code in (404, 503)
