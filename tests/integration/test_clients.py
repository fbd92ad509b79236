"""Stock clients against the real local server (`aimass serve`) over TCP: OpenAI SDK, Triton HTTP client."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton
from openai import BadRequestError, NotFoundError, OpenAI

from aimass.metering.key_admin import create_key
from aimass.metering.stores.key_factory import open_key_store
from aimass.settings import DEFAULT_PLANS, Settings
from tests.ports import free_port
from tests.tiny_models import DIM, TINY_TEXT, reference_embedding
from tests.tiny_rl import TINY_RL, build_tiny_rl, reference_probabilities
from tests.tiny_vision import TINY_VISION, build_tiny_vision, image_bytes
from tests.tiny_vision import reference_logits as vision_logits


def start_server(
    store: Path, port: int, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> subprocess.Popen[str]:
    env = {**os.environ, "PORT": str(port), "AIMASS_MODEL_STORE": str(store), **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "aimass_tools.cli", "serve", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: stop_server takes its workers with it
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1) as reply:
                if reply.status == 200:
                    return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {process.stdout.read() if process.stdout else ''}") from None
            time.sleep(0.1)
    stop_server(process)
    raise RuntimeError("server did not become ready in 30 s")


def stop_server(process: subprocess.Popen[str]) -> None:
    """Kill the server and its workers: uvicorn's worker processes outlive a supervisor killed alone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    # One server, every domain, as `make serve` runs it.
    store = tmp_path_factory.mktemp("clients-store")
    (store / TINY_TEXT).symlink_to(tiny_store / TINY_TEXT)
    build_tiny_vision(store)
    build_tiny_rl(store)
    port = free_port()
    process = start_server(store, port)
    yield f"127.0.0.1:{port}", process
    if process.poll() is None:
        stop_server(process)
        process.wait()


def test_openai_sdk_embeddings(server: tuple[str, subprocess.Popen[str]]) -> None:
    address, _ = server
    client = OpenAI(base_url=f"http://{address}/v1", api_key="not-needed-locally", max_retries=0)
    texts = ["the cat sat", "a blue car"]
    # The SDK asks for base64 unless told otherwise and decodes it itself.
    result = client.embeddings.create(model=TINY_TEXT, input=texts)
    assert result.model == TINY_TEXT and result.usage.prompt_tokens == 6
    for text, item in zip(texts, result.data, strict=True):
        np.testing.assert_allclose(item.embedding, reference_embedding(text), atol=1e-6)
    floats = client.embeddings.create(model=TINY_TEXT, input="sun", encoding_format="float")
    np.testing.assert_allclose(floats.data[0].embedding, reference_embedding("sun"), atol=1e-6)
    assert [m.id for m in client.models.list()] == sorted([TINY_TEXT, TINY_VISION, TINY_RL])
    with pytest.raises(BadRequestError, match="cannot shorten them"):
        client.embeddings.create(model=TINY_TEXT, input="sun", dimensions=2)


@pytest.fixture(scope="module")
def metered(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """A server with metering on (SQLite in its own state folder), and a key of tenant acme for it."""
    state = tmp_path_factory.mktemp("clients-state")
    key = create_key(
        open_key_store(Settings(metering="sqlite", state_dir=state)),
        tenant="acme",
        scopes=("invoke",),
        plan="default",
        plans=DEFAULT_PLANS,
        now=datetime.now(UTC),
    )
    port = free_port()
    process = start_server(tiny_store, port, {"AIMASS_METERING": "sqlite", "AIMASS_STATE_DIR": str(state)})
    yield f"127.0.0.1:{port}", key.clear_text, state
    stop_server(process)
    process.wait()


def test_openai_sdk_files(metered: tuple[str, str, Path], tmp_path: Path) -> None:
    address, key, state = metered
    client = OpenAI(base_url=f"http://{address}/v1", api_key=key, max_retries=0)
    path = tmp_path / "requests.jsonl"
    lines = b'{"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": {"input": "sun"}}\n'
    path.write_bytes(lines)

    with path.open("rb") as upload:
        made = client.files.create(file=upload, purpose="batch")
    assert made.object == "file" and made.bytes == len(lines) and made.filename == "requests.jsonl"
    assert made.purpose == "batch" and made.status == "processed" and made.id.startswith("file-")
    assert (state / "files" / "acme" / made.id / "content").read_bytes() == lines

    assert [item.id for item in client.files.list()] == [made.id]
    assert [item.id for item in client.files.list(purpose="batch")] == [made.id]
    assert client.files.retrieve(made.id) == made
    assert client.files.content(made.id).read() == lines
    deleted = client.files.delete(made.id)
    assert deleted.id == made.id and deleted.deleted is True
    with pytest.raises(NotFoundError, match=made.id):
        client.files.retrieve(made.id)
    assert list(client.files.list()) == []


@pytest.mark.parametrize("binary", [True, False])
def test_triton_http_client(server: tuple[str, subprocess.Popen[str]], binary: bool) -> None:
    # The client sends its requests with no Content-Type: read as JSON, or by Inference-Header-Content-Length.
    address, _ = server
    client = triton.InferenceServerClient(url=address)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(TINY_TEXT) and client.is_model_ready(TINY_TEXT, "1")
    metadata = client.get_model_metadata(TINY_TEXT)
    assert metadata["inputs"][0]["datatype"] == "BYTES"

    texts = ["green tree", "the sun on the house"]
    tensor = triton.InferInput("text", [2], "BYTES")
    tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object), binary_data=binary)
    outputs = None if binary else [triton.InferRequestedOutput("embedding", binary_data=False)]
    result = client.infer(TINY_TEXT, [tensor], outputs=outputs, request_id="r-1")
    vectors = result.as_numpy("embedding")
    assert vectors is not None and vectors.shape == (2, DIM)
    np.testing.assert_allclose(vectors, np.stack([reference_embedding(t) for t in texts]), atol=1e-6)
    assert result.get_response()["model_version"] == "1"


def test_triton_client_with_an_image_and_a_policy(server: tuple[str, subprocess.Popen[str]]) -> None:
    address, _ = server
    client = triton.InferenceServerClient(url=address)
    images = triton.InferInput("image", [2], "BYTES")
    colours = [(255, 0, 0), (0, 0, 255)]
    images.set_data_from_numpy(np.array([image_bytes(c) for c in colours], dtype=object))  # binary by default
    logits = client.infer(TINY_VISION, [images]).as_numpy("logits")
    np.testing.assert_allclose(logits, np.stack([vision_logits(c) for c in colours]), atol=1e-4)

    observations = np.array([[0.0, 0.1, 0.05, -0.2], [0.0, 0.0, -0.1, 0.0]], dtype=np.float32)
    tensor = triton.InferInput("observation", list(observations.shape), "FP32")
    tensor.set_data_from_numpy(observations)
    probabilities = client.infer(TINY_RL, [tensor]).as_numpy("probabilities")
    np.testing.assert_allclose(probabilities, reference_probabilities(observations), atol=1e-6)


def test_triton_client_sees_protocol_errors(server: tuple[str, subprocess.Popen[str]]) -> None:
    address, _ = server
    client = triton.InferenceServerClient(url=address)
    tensor = triton.InferInput("text", [1], "FP32")
    tensor.set_data_from_numpy(np.zeros(1, dtype=np.float32))
    with pytest.raises(triton.InferenceServerException, match="must have datatype BYTES, got FP32"):
        client.infer(TINY_TEXT, [tensor])


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_as_the_readme_shows_it(server: tuple[str, subprocess.Popen[str]]) -> None:
    address, _ = server
    body = json.dumps({"model": TINY_TEXT, "input": "the cat sat"})
    command = ["curl", "-s", f"http://{address}/v1/embeddings", "-d", body]
    # With the README's Content-Type the embedding comes back...
    answer = json.loads(subprocess.run([*command, "-H", "Content-Type: application/json"], capture_output=True).stdout)
    np.testing.assert_allclose(answer["data"][0]["embedding"], reference_embedding("the cat sat"), atol=1e-6)
    # ...and without it (curl -d says application/x-www-form-urlencoded) a 415 says which type to send.
    refused = json.loads(subprocess.run(command, capture_output=True).stdout)["error"]
    assert refused["code"] == "unsupported_media_type" and "reads application/json" in refused["message"]


def test_ctrl_c_stops_the_server_cleanly(tiny_store: Path) -> None:
    process = start_server(tiny_store, free_port())
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=15)
    assert process.returncode == 0, output
    assert "Base URL: http://127.0.0.1:" in output and "curl -s" in output


def test_openai_sdk_runs_a_batch_of_ten_thousand_embeddings(metered: tuple[str, str, Path], tmp_path: Path) -> None:
    # The server runs the batch on its own worker thread (AIMASS_BATCH_WORKERS, 1), as `make serve` does.
    address, key, _ = metered
    client = OpenAI(base_url=f"http://{address}/v1", api_key=key, max_retries=0)
    texts = [f"sentence {n} of the batch, about {('cats', 'cars', 'trees')[n % 3]}" for n in range(10_000)]
    path = tmp_path / "embeddings.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {
                    "custom_id": f"req-{n}",
                    "method": "POST",
                    "url": "/v1/embeddings",
                    "body": {"model": TINY_TEXT, "input": text},
                }
            )
            + "\n"
            for n, text in enumerate(texts)
        )
    )
    with path.open("rb") as upload:
        batch_input = client.files.create(file=upload, purpose="batch")
    batch = client.batches.create(input_file_id=batch_input.id, endpoint="/v1/embeddings", completion_window="24h")
    deadline = time.monotonic() + 300
    while batch.status not in ("completed", "failed", "expired", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.5)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (
        10_000,
        10_000,
        0,
    )
    assert batch.output_file_id is not None and batch.error_file_id is None
    rows = [json.loads(row) for row in client.files.content(batch.output_file_id).text.splitlines()]
    assert [row["custom_id"] for row in rows] == [f"req-{n}" for n in range(10_000)]
    for n in range(0, 10_000, 997):  # a sample, against the synchronous answer
        got = np.array(rows[n]["response"]["body"]["data"][0]["embedding"])
        sync = np.array(
            client.embeddings.create(model=TINY_TEXT, input=texts[n], encoding_format="float").data[0].embedding
        )
        assert float(got @ sync / np.linalg.norm(got) / np.linalg.norm(sync)) >= 0.9999
