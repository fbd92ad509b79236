"""Any domain that implements the runtime interface gets the whole V2 API: every datatype, JSON and binary.

The 'echo' domain here is a test double built on the public interface, registered the way a real domain
package is found (``aimass_<domain>`` exporting ``Runtime``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.protocol.v2_codec import DTYPES
from aimass.serving.runtime import ModelRuntime, Prediction, Tensor
from aimass.settings import Settings
from aimass.store.manifest import EngineSpec, ModelManifest, TensorSpec, file_entry, write_manifest
from tests.unit.test_v2_codec import NUMERIC


class EchoRuntime(ModelRuntime):
    def load(self) -> None:
        self.loaded = True

    def predict(self, inputs: Mapping[str, Tensor]) -> Prediction:
        return Prediction(outputs={f"{name}_out": tensor for name, tensor in inputs.items()})


@pytest.fixture(scope="module")
def echo_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    module = ModuleType("aimass_echo")
    module.Runtime = EchoRuntime  # type: ignore[attr-defined]
    sys.modules["aimass_echo"] = module
    store = tmp_path_factory.mktemp("echo-store")
    directory: Path = store / "echo" / "1"
    directory.mkdir(parents=True)
    (directory / "model.onnx").write_bytes(b"unused by the echo runtime")
    # Every datatype; BOOL optional, as a runtime serving alternative forms of one input would declare it.
    tensors = tuple(TensorSpec(name=dt.lower(), datatype=dt, shape=(-1, 2), optional=dt == "BOOL") for dt in DTYPES)
    manifest = ModelManifest(
        name="echo",
        version="1",
        domain="echo",
        task="echo",
        files=(file_entry(directory, "model.onnx"),),
        engine=EngineSpec(file="model.onnx", inputs=(), outputs=()),
        inputs=tensors,
        outputs=tuple(TensorSpec(name=f"{t.name}_out", datatype=t.datatype, shape=t.shape) for t in tensors),
    )
    write_manifest(directory, manifest)
    with TestClient(build_app(Settings(model_store=store)), raise_server_exceptions=False) as client:
        yield client
    del sys.modules["aimass_echo"]


def payload() -> dict[str, list[object]]:
    return {**NUMERIC, "BYTES": ["a", "bé", "", "d"]}


def test_every_datatype_round_trips_as_json(echo_client: TestClient) -> None:
    inputs = [{"name": dt.lower(), "datatype": dt, "shape": [2, 2], "data": v} for dt, v in payload().items()]
    response = echo_client.post("/v2/models/echo/infer", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    for datatype, values in payload().items():
        out = outputs[f"{datatype.lower()}_out"]
        assert (out["datatype"], out["shape"], out["data"]) == (datatype, [2, 2], values)


def test_every_datatype_round_trips_as_binary(echo_client: TestClient) -> None:
    from aimass.protocol import v2_codec as codec

    arrays = {dt: codec.from_json(v, dt, [2, 2], dt) for dt, v in payload().items()}
    blobs = {dt: codec.to_binary(a, dt) for dt, a in arrays.items()}
    document = {
        "inputs": [
            {"name": dt.lower(), "datatype": dt, "shape": [2, 2], "parameters": {"binary_data_size": len(b)}}
            for dt, b in blobs.items()
        ],
        "parameters": {"binary_data_output": True},
    }
    header = json.dumps(document).encode()
    response = echo_client.post(
        "/v2/models/echo/infer",
        content=header + b"".join(blobs.values()),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 200, response.text
    size = int(response.headers["inference-header-content-length"])
    offset = size
    for out in json.loads(response.content[:size])["outputs"]:
        length = out["parameters"]["binary_data_size"]
        datatype = out["datatype"]
        got = codec.from_binary(response.content[offset : offset + length], datatype, out["shape"], "out")
        np.testing.assert_array_equal(got, arrays[datatype])
        offset += length
    assert offset == len(response.content)


def test_optional_inputs_may_be_left_out_and_required_ones_may_not(echo_client: TestClient) -> None:
    inputs = [
        {"name": dt.lower(), "datatype": dt, "shape": [2, 2], "data": v} for dt, v in payload().items() if dt != "BOOL"
    ]
    response = echo_client.post("/v2/models/echo/infer", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    assert "bool_out" not in {o["name"] for o in response.json()["outputs"] if "data" in o}
    missing = echo_client.post("/v2/models/echo/infer", json={"inputs": inputs[1:]})
    assert missing.status_code == 400 and f"missing input(s) ['{inputs[0]['name']}']" in missing.json()["error"]
