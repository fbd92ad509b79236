"""The inference routes' declarations: V2 infer and OpenAI's embeddings, each a plain handler of the request.

Apart from the routers (``aimass.http.v2``, ``aimass.http.openai``), which import FastAPI's request type for their
annotations: a function's direct Lambda path (``aimass.http.lambda_direct``) serves these without the web stack.
"""

from __future__ import annotations

from aimass.errors import ModelNotReady, NotFound
from aimass.http.answers import Answer, Call
from aimass.http.error_docs import BODY, KEYED, responses
from aimass.http.hot_routes import HotRoute, calling, schema_ref
from aimass.http.offload import Offload
from aimass.protocol.openai import EmbeddingsRequest, EmbeddingsResponse, OpenAIService
from aimass.protocol.v2_dataplane import HEADER_LENGTH, DataPlane
from aimass.protocol.v2_types import InferenceRequest, InferenceResponse

INFER_BODY = {
    "application/json": {"schema": schema_ref(InferenceRequest)},
    "application/octet-stream": {
        "schema": {"type": "string", "format": "binary"},
        "description": "binary tensor extension: a JSON header of Inference-Header-Content-Length bytes, "
        "then the tensors' bytes in input order",
    },
}


def v2_hot_routes(plane: DataPlane, offload: Offload) -> list[HotRoute]:
    def infer(call: Call) -> Answer:
        params = call.path_params
        answer = plane.infer(params["name"], params.get("version"), call.body, call.headers.get(HEADER_LENGTH))
        return Answer(answer.body, answer.media_type, answer.headers)

    endpoint = calling(infer, offload)
    return [
        HotRoute(
            path,
            endpoint,
            summary,
            "Open Inference Protocol (V2)",
            INFER_BODY,
            InferenceResponse,
            responses(*BODY, NotFound, ModelNotReady, *KEYED, v2=True),
            models=(InferenceRequest,),
            call=infer,
        )
        for path, summary in (
            ("/v2/models/{name}/infer", "Inference"),
            ("/v2/models/{name}/versions/{version}/infer", "Inference (pinned version)"),
        )
    ]


MODEL_VERSION_HEADER = "x-model-version"
TAG = "OpenAI-compatible"
# What a route that runs a model on a request body can answer.
INFERENCE_ERRORS = responses(*BODY, NotFound, ModelNotReady, *KEYED)


def openai_hot_routes(service: OpenAIService, offload: Offload) -> list[HotRoute]:
    def embeddings(call: Call) -> Answer:
        body, runtime = service.embeddings(call.body)
        return Answer(body, "application/json", {MODEL_VERSION_HEADER: runtime.manifest.version})

    body = {"application/json": {"schema": schema_ref(EmbeddingsRequest)}}
    return [
        HotRoute(
            "/v1/embeddings",
            calling(embeddings, offload),
            "Create embeddings",
            TAG,
            body,
            EmbeddingsResponse,
            INFERENCE_ERRORS,
            models=(EmbeddingsRequest,),
            call=embeddings,
        )
    ]
