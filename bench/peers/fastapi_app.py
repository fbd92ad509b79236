"""The peer bench/server_mode.py compares with: a plain FastAPI app on stock uvicorn serving the same model file
(tokenizer, ONNX Runtime, one sentence per request), as one would write it without AI Mass.

    .venv/bin/python -m uvicorn bench.server_mode_peer:app --workers 2
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from pydantic import BaseModel
from tokenizers import Tokenizer

FOLDER = Path(__file__).resolve().parents[1] / "model_store" / "all-minilm-l6-v2" / "1"

options = ort.SessionOptions()
options.intra_op_num_threads = int(os.environ.get("PEER_THREADS", "1"))
session = ort.InferenceSession(str(FOLDER / "model.onnx"), options, providers=["CPUExecutionProvider"])
tokenizer = Tokenizer.from_file(str(FOLDER / "tokenizer.json"))
tokenizer.no_padding()
app = FastAPI()


class Embed(BaseModel):
    model: str
    input: str


@app.get("/v2/health/ready")
def ready() -> dict[str, bool]:
    return {"ready": True}


@app.post("/v1/embeddings")
def embeddings(request: Embed) -> dict[str, Any]:
    encoding = tokenizer.encode(request.input)
    feeds = {
        "input_ids": np.asarray([encoding.ids], dtype=np.int64),
        "attention_mask": np.asarray([encoding.attention_mask], dtype=np.int64),
    }
    vector = session.run(None, feeds)[0][0]
    return {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": vector.tolist()}]}
