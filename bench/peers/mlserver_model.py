"""MLServer serving the same model through its V2 API (a BYTES input ``text``, an FP32 output ``embedding``), with
MLServer's adaptive batching where the model settings enable it. Runs in build/peers-venv (``make bench-peers``);
``bench/server_mode.py`` writes the settings and starts ``mlserver start``.
"""

from __future__ import annotations

from mlserver import MLModel
from mlserver.codecs import NumpyCodec, StringCodec
from mlserver.types import InferenceRequest, InferenceResponse

from bench.peers.embedder import Embedder


class MiniLM(MLModel):  # type: ignore[misc]
    async def load(self) -> bool:
        self.embedder = Embedder()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        texts = StringCodec.decode_input(payload.inputs[0])
        vectors = self.embedder.embed(texts)
        return InferenceResponse(model_name=self.name, outputs=[NumpyCodec.encode_output("embedding", vectors)])
