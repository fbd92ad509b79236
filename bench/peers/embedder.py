"""The one model every peer serves, as one would write it for that server: MiniLM's tokenizer and ONNX graph from
the AI Mass store folder, texts in, one vector per text out (padded to the longest text of a batch).

Only numpy, ONNX Runtime and tokenizers: each peer's own environment imports it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer

FOLDER = Path(__file__).resolve().parents[2] / "model_store" / "all-minilm-l6-v2" / "1"


class Embedder:
    def __init__(self, folder: Path = FOLDER, threads: int | None = None) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or int(os.environ.get("PEER_THREADS", "1"))
        self.session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self.inputs = [each.name for each in self.session.get_inputs()]
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_padding()  # to the longest text of the batch, not the file's fixed length

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        encodings = self.tokenizer.encode_batch(list(texts))
        values = {
            "input_ids": [each.ids for each in encodings],
            "attention_mask": [each.attention_mask for each in encodings],
            "token_type_ids": [each.type_ids for each in encodings],
        }
        feeds = {name: np.asarray(values[name], dtype=np.int64) for name in self.inputs}
        vectors: npt.NDArray[np.float32] = self.session.run(None, feeds)[0]
        return vectors
