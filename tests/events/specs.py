"""The table of generated events: one entry per ``tests/events/<name>.json``, what the client sent.

Each entry is the builder (``http_api_v2``, ``rest_v1``, ``authorizer_request`` of ``aimass_tools.events``) with
the request's method, path, headers and body; ``build(name)`` adds the name, from which the ids and times come.
REST resources are the ones ``infra.routes`` gives these paths (``/v2/models/<model>/{proxy+}``,
``/v1/<domain>/{proxy+}``, the server-wide literals); ``tests/unit/test_events.py`` checks that they still are.

``SPECS`` is this module's ``TABLE`` plus the requests files of ``tests/events/requests/`` (JSON, one per domain
``aimass new-domain`` scaffolded, written by it), so a scaffolded domain's events regenerate and are checked
like the rest with no edit here.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from functools import partial
from pathlib import Path

from aimass_tools.events import REQUESTS, Event, authorizer_request, from_request, http_api_v2, read_requests, rest_v1
from tests.events.bodies import bytes_tensor, fp32, json_body, kserve_binary, media, multipart

Spec = Callable[[str], Event]

JSON = {"Content-Type": "application/json"}
TEXT_MODEL, RL_MODEL, VISION_MODEL = "all-minilm-l6-v2", "cartpole-ppo", "efficientnet-lite0"
SENTENCES = ["A man is playing a guitar.", "Someone plays an instrument."]
OBSERVATIONS = [[0.0123, -0.0456, 0.0312, 0.0871], [-0.4021, 0.3377, -0.0614, -0.5123]]
WINE = [
    [13.32, 3.24, 2.38, 21.5, 92.0, 1.93, 0.76, 0.45, 1.25, 8.42, 0.55, 1.62, 650.0],
    [13.5, 1.81, 2.61, 20.0, 96.0, 2.53, 2.61, 0.28, 1.66, 3.52, 1.12, 3.82, 845.0],
]
WINE_COLUMNS = [
    "alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
    "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue", "od280/od315_of_diluted_wines", "proline",
]  # fmt: skip


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _infer(model: str) -> tuple[str, str]:
    """(path, REST resource) of a model's V2 inference route."""
    return f"/v2/models/{model}/infer", f"/v2/models/{model}/{{proxy+}}"


TEXT_INFER = json_body(
    {"id": "req-1", "inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": SENTENCES}]}
)
TEXT_INFER_BINARY = kserve_binary(
    {
        "inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 62}}],
        "outputs": [{"name": "embedding", "parameters": {"binary_data": True}}],
    },
    bytes_tensor([sentence.encode() for sentence in SENTENCES]),
)
RL_ACT = json_body({"observations": OBSERVATIONS, "deterministic": True})
RL_INFER = json_body(
    {"id": "req-rl-1", "inputs": [{"name": "observation", "shape": [2, 4], "datatype": "FP32", "data": OBSERVATIONS}]}
)
RL_INFER_BINARY = kserve_binary(
    {
        "inputs": [
            {"name": "observation", "shape": [2, 4], "datatype": "FP32", "parameters": {"binary_data_size": 32}}
        ],
        "parameters": {"binary_data_output": True},
    },
    fp32(OBSERVATIONS),
)
RED, GREEN = media("red.png"), media("green.png")
# A held-out speaker saying commands (en-gb-x-rp+steph2 as WAV; en-gb-x-gbcwmd+travis as 22.05 kHz FLAC),
# and flite's awb voice for the Sphinx transcription.
COMMANDS_WAV, COMMANDS_FLAC, STELLA_FLAC = media("commands.wav"), media("commands.flac"), media("stella.flac")
SPEECH_FORM = multipart("----aimassboundary3vXq8LkT2mPz", [("file", ("commands.flac", "audio/flac", COMMANDS_FLAC))])
SPHINX_FORM = multipart(
    "----aimassboundary7Hq2LmW9xRt",
    [
        ("model", "sphinx-en-us"),
        ("response_format", "verbose_json"),
        ("timestamp_granularities[]", "word"),
        ("timestamp_granularities[]", "segment"),
        ("file", ("stella.flac", "audio/flac", STELLA_FLAC)),
    ],
)
VISION_FORM = multipart(
    "----aimassboundary7MA4YWxkTrZu0gW",
    [("top_k", "3"), ("images", ("red.png", "image/png", RED)), ("images", ("green.png", "image/png", GREEN))],
)
VISION_INFER_BINARY = kserve_binary(
    {
        "inputs": [{"name": "image", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 159}}],
        "outputs": [{"name": "logits", "parameters": {"binary_data": True}}],
    },
    bytes_tensor([RED, GREEN]),
)
SPEECH_INFER_BINARY = kserve_binary(
    {
        "id": "req-7",
        "inputs": [
            {"name": "waveform", "shape": [1, 16000], "datatype": "FP32", "parameters": {"binary_data_size": 64000}}
        ],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": False}}],
    },
    media("stop.f32"),  # one second, 16 kHz, of "stop" (float32 samples)
)

v2_post = partial(http_api_v2, method="POST", headers=JSON)
rest_post = partial(rest_v1, method="POST", headers=JSON)

TABLE: dict[str, Spec] = {
    # --- HTTP API (payload 2.0) ---
    "apigw_http_v2_llm_chat": partial(
        v2_post,
        path="/v1/chat/completions",
        route_key="POST /v1/chat/completions",
        body=json_body(
            {
                "model": "smollm2-135m-instruct",
                "messages": [{"role": "user", "content": "What is the capital of France?"}],
                "max_tokens": 16,
                "temperature": 0,
            }
        ),
    ),
    "apigw_http_v2_rl_act": partial(v2_post, path="/v1/rl/act", body=RL_ACT),
    "apigw_http_v2_rl_act_bad_nan": partial(
        v2_post, path="/v1/rl/act", body='{"observations": [[0.0123, -0.0456, 0.0312, 0.0871], [0.01, NaN, 0.02, 0.0]]}'
    ),
    "apigw_http_v2_rl_infer": partial(v2_post, path=_infer(RL_MODEL)[0], body=RL_INFER),
    "apigw_http_v2_rl_infer_binary": partial(
        http_api_v2, method="POST", path=_infer(RL_MODEL)[0], body=RL_INFER_BINARY[0], headers=RL_INFER_BINARY[1]
    ),
    "apigw_http_v2_speech_sphinx_transcriptions": partial(
        http_api_v2,
        method="POST",
        path="/v1/audio/transcriptions",
        user_agent="OpenAI/Python 3.57.0",
        body=SPHINX_FORM[0],
        headers={"Content-Type": SPHINX_FORM[1]},
    ),
    "apigw_http_v2_speech_transcribe": partial(
        v2_post, path="/v1/speech/transcribe", body=json_body({"model": "speech-commands", "file": _b64(COMMANDS_WAV)})
    ),
    "apigw_http_v2_speech_transcribe_bad_file": partial(
        v2_post,
        path="/v1/speech/transcribe",
        body=json_body({"model": "speech-commands", "file": _b64(b"These are my notes, not a recording.\n")}),
    ),
    "apigw_http_v2_tensor_infer": partial(
        v2_post,
        path=_infer("tensor-wine")[0],
        body=json_body(
            {"id": "req-tensor-1", "inputs": [{"name": "features", "shape": [2, 13], "datatype": "FP32", "data": WINE}]}
        ),
    ),
    "apigw_http_v2_text_bad_json": partial(v2_post, path="/v1/embeddings", body='{"input": ["unterminated"'),
    "apigw_http_v2_text_embeddings": partial(
        v2_post, path="/v1/embeddings", body=json_body({"input": SENTENCES, "model": TEXT_MODEL})
    ),
    "apigw_http_v2_text_infer": partial(v2_post, path=_infer(TEXT_MODEL)[0], body=TEXT_INFER),
    "apigw_http_v2_text_infer_binary": partial(
        http_api_v2, method="POST", path=_infer(TEXT_MODEL)[0], body=TEXT_INFER_BINARY[0], headers=TEXT_INFER_BINARY[1]
    ),
    "apigw_http_v2_vision_classify": partial(
        v2_post, path="/v1/vision/classify", body=json_body({"images": [_b64(RED)], "top_k": 2})
    ),
    "apigw_http_v2_vision_infer_binary": partial(
        http_api_v2,
        method="POST",
        path=_infer(VISION_MODEL)[0],
        body=VISION_INFER_BINARY[0],
        headers=VISION_INFER_BINARY[1],
    ),
    # --- REST API (payload 1.0, stage prod) ---
    "apigw_rest_v1_models": partial(rest_v1, method="GET", path="/v1/models", resource="/v1/models"),
    "apigw_rest_v1_repository_index": partial(
        rest_post, path="/v2/repository/index", resource="/v2/repository/index", body="{}"
    ),
    "apigw_rest_v1_rl_act": partial(rest_post, path="/v1/rl/act", resource="/v1/rl/{proxy+}", body=RL_ACT),
    "apigw_rest_v1_rl_infer": partial(rest_post, path=_infer(RL_MODEL)[0], resource=_infer(RL_MODEL)[1], body=RL_INFER),
    "apigw_rest_v1_rl_infer_binary": partial(
        rest_v1,
        method="POST",
        path=_infer(RL_MODEL)[0],
        resource=_infer(RL_MODEL)[1],
        body=RL_INFER_BINARY[0],
        headers=RL_INFER_BINARY[1],
    ),
    "apigw_rest_v1_speech_infer_binary": partial(
        rest_v1,
        method="POST",
        path=_infer("speech-commands")[0],
        resource=_infer("speech-commands")[1],
        body=SPEECH_INFER_BINARY[0],
        headers=SPEECH_INFER_BINARY[1],
    ),
    "apigw_rest_v1_speech_transcribe_multipart": partial(
        rest_v1,
        method="POST",
        path="/v1/speech/transcribe",
        resource="/v1/speech/{proxy+}",
        body=SPEECH_FORM[0],
        headers={"Content-Type": SPEECH_FORM[1]},
    ),
    "apigw_rest_v1_tensor_classify_rows": partial(
        rest_post,
        path="/v1/tensor/classify-rows",
        resource="/v1/tensor/{proxy+}",
        body=json_body(
            {"model": "tensor-wine", "rows": [dict(zip(WINE_COLUMNS, WINE[0], strict=True)), WINE[1]], "top_k": 2}
        ),
    ),
    "apigw_rest_v1_text_infer": partial(
        rest_post, path=_infer(TEXT_MODEL)[0], resource=_infer(TEXT_MODEL)[1], body=TEXT_INFER
    ),
    "apigw_rest_v1_text_infer_binary": partial(
        rest_v1,
        method="POST",
        path=_infer(TEXT_MODEL)[0],
        resource=_infer(TEXT_MODEL)[1],
        body=TEXT_INFER_BINARY[0],
        headers=TEXT_INFER_BINARY[1],
    ),
    "apigw_rest_v1_text_model_metadata": partial(
        rest_v1, method="GET", path=f"/v2/models/{TEXT_MODEL}", resource=f"/v2/models/{TEXT_MODEL}"
    ),
    "apigw_rest_v1_vision_classify_multipart": partial(
        rest_v1,
        method="POST",
        path="/v1/vision/classify",
        resource="/v1/vision/{proxy+}",
        body=VISION_FORM[0],
        headers={"Content-Type": VISION_FORM[1]},
    ),
    "apigw_rest_v1_vision_infer": partial(
        rest_post,
        path=_infer(VISION_MODEL)[0],
        resource=_infer(VISION_MODEL)[1],
        body=json_body(
            {
                "id": "req-1",
                "inputs": [{"name": "image", "shape": [2], "datatype": "BYTES", "data": [_b64(RED), _b64(GREEN)]}],
            }
        ),
    ),
    # --- REST API REQUEST authorizer ---
    "apigw_authorizer_request": partial(
        authorizer_request, method="POST", path=_infer(TEXT_MODEL)[0], resource=_infer(TEXT_MODEL)[1], headers=JSON
    ),
}


def requested(directory: Path, table: dict[str, Spec]) -> dict[str, Spec]:
    """The events of the requests files in ``directory``; a name the table or another file has is an error."""
    found: dict[str, Spec] = {}
    for path in sorted(directory.glob("*.json")):
        for name, request in read_requests(path).items():
            if name in table or name in found:
                raise ValueError(f"{path}: event '{name}' is defined twice; rename one")
            found[name] = partial(from_request, request=request)
    return found


SPECS: dict[str, Spec] = TABLE | requested(Path(__file__).parents[2] / REQUESTS, TABLE)


def build(name: str) -> Event:
    """The event ``tests/events/<name>.json`` holds."""
    return SPECS[name](name)
