"""FastAPI on stock uvicorn: the same model as a plain app one would write without AI Mass (one text a request).

.venv/bin/python -m uvicorn bench.peers.fastapi_app:app --workers 2
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from bench.peers.embedder import Embedder

embedder = Embedder()
app = FastAPI()


class Embed(BaseModel):
    model: str
    input: str


@app.get("/v2/health/ready")
def ready() -> dict[str, bool]:
    return {"ready": True}


@app.post("/v1/embeddings")
def embeddings(request: Embed) -> dict[str, Any]:
    vector = embedder.embed([request.input])[0]
    return {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": vector.tolist()}]}
