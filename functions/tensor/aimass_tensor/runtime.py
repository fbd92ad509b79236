"""Any imported ONNX graph: named tensors in, named tensors out, and the tasks its shape matched.

No code is written per model: the manifest (written by ``aimass.importing``) says which tensors the graph takes
and gives, and its ``preprocessing`` block which task its shape matched (``aimass_tensor.preprocessing``). V2
requests feed the graph's own inputs, already checked against the manifest by the protocol layer; a text
embedder's V2 input is its strings instead (``text``), tokenized here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

import numpy as np
import numpy.typing as npt

from aimass.errors import InvalidInput, ModelLoadError
from aimass.serving.batching import decode_within, in_chunks
from aimass.serving.classify import top_k
from aimass.serving.runtime import ModelRuntime, Prediction, Tensor
from aimass.serving.tasks import TaskResult, TaskSpec
from aimass_tensor import images
from aimass_tensor import tasks as offered
from aimass_tensor.preprocessing import EMBEDDING_OUTPUT, TEXT_INPUT, TensorPreprocessing
from aimass_tensor.tasks import ClassifyImagesRequest, ClassifyRowsRequest, EmbedRequest
from aimass_tensor.texts import CHARS_PER_TOKEN, Embedder, texts_of

_NUMPY = {
    "FP32": np.float32, "FP16": np.float16, "FP64": np.float64, "INT8": np.int8, "INT16": np.int16,
    "INT32": np.int32, "INT64": np.int64, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
    "UINT64": np.uint64, "BOOL": np.bool_,
}  # fmt: skip


class TensorRuntime(ModelRuntime):
    @classmethod
    def declared_tasks(cls) -> dict[str, TaskSpec]:
        return offered.declared()

    def load(self) -> None:
        self.pre = self.preprocessing(TensorPreprocessing)
        self.session = self.engine_session()
        engine = self.manifest.engine
        self.engine_outputs = [spec.name for spec in engine.outputs]
        self.served_outputs = [spec.name for spec in self.manifest.outputs]
        self._tasks: dict[str, TaskSpec] = {}
        if self.pre.mode == "embedding":
            self._load_embedder()
            return
        if self.manifest.inputs != engine.inputs:
            raise ModelLoadError(f"{self.label}: the tensor runtime serves the graph's own inputs")
        if missing := sorted(set(self.served_outputs) - set(self.engine_outputs)):
            raise ModelLoadError(f"{self.label}: the manifest serves outputs the graph lacks: {missing}")
        self.feeds = {spec.name: spec.datatype for spec in engine.inputs}
        if self.pre.mode in ("image-classification", "tabular-classification"):
            self._load_classifier()

    def _load_classifier(self) -> None:
        scores = {spec.name: spec for spec in self.manifest.engine.outputs}.get(self.pre.scores or "")
        self.labels = self.manifest.labels or ()
        if scores is None or len(scores.shape) != 2 or scores.shape[1] != len(self.labels):
            raise ModelLoadError(
                f"{self.label}: a classifier's score output must be [-1, labels] with one label per column; "
                f"preprocessing.scores is {self.pre.scores!r}, with {len(self.labels)} labels"
            )
        (self.fed,) = self.feeds
        if self.pre.mode == "image-classification":
            if self.pre.image is None:
                raise ModelLoadError(f"{self.label}: an image classifier needs preprocessing.image")
            self._tasks[offered.CLASSIFY_IMAGES] = offered.spec(offered.CLASSIFY_IMAGES, self.classify_images)
        else:
            self._tasks[offered.CLASSIFY_ROWS] = offered.spec(offered.CLASSIFY_ROWS, self.classify_rows)

    def _load_embedder(self) -> None:
        text = self.pre.text
        if text is None:
            raise ModelLoadError(f"{self.label}: an embedder needs preprocessing.text (its tokenizer)")
        served_in = [(s.name, s.datatype) for s in self.manifest.inputs]
        served_out = [s.name for s in self.manifest.outputs]
        if served_in != [(TEXT_INPUT, "BYTES")] or served_out != [EMBEDDING_OUTPUT]:
            raise ModelLoadError(
                f"{self.label}: an embedder serves '{TEXT_INPUT}' (BYTES) in, '{EMBEDDING_OUTPUT}' out"
            )
        feeds = [spec.name for spec in self.manifest.engine.inputs]
        self.embedder = Embedder(self.artifact.read(text.tokenizer).decode("utf-8"), text, feeds)
        self._tasks[offered.EMBED] = offered.spec(offered.EMBED, self.embed)

    # --- V2 ------------------------------------------------------------------------------------------------

    def predict(self, inputs: Mapping[str, Tensor]) -> Prediction:
        if self.pre.mode == "embedding":
            return self._embedded(texts_of(inputs[TEXT_INPUT], name=TEXT_INPUT, limit=self._text_limit()))
        outputs = self.run({name: _fed(inputs[name], datatype) for name, datatype in self.feeds.items()})
        rows = len(next(iter(inputs.values())))
        return Prediction(outputs={name: outputs[name] for name in self.served_outputs}, usage={"rows": rows})

    def run(self, feeds: Mapping[str, Tensor]) -> dict[str, Tensor]:
        values = self.session.run(self.engine_outputs, dict(feeds))
        return dict(zip(self.engine_outputs, values, strict=True))

    def tasks(self) -> dict[str, TaskSpec]:
        return self._tasks

    # --- tasks ---------------------------------------------------------------------------------------------

    def classify_images(self, request: ClassifyImagesRequest) -> TaskResult:
        spec = self.pre.image
        assert spec is not None  # load() refuses an image classifier without it
        cost, decode = partial(images.area, spec=spec), partial(images.pixels, spec=spec)
        each = decode_within(
            request.images, cost=cost, decode=decode, limit=spec.max_request_pixels, unit="pixels", param="images"
        )
        batch = np.stack(list(each))
        return TaskResult(outputs=self._ranked(batch, request.top_k), usage={"images": len(batch)})

    def classify_rows(self, request: ClassifyRowsRequest) -> TaskResult:
        table = self._table(request.rows)
        return TaskResult(outputs=self._ranked(table, request.top_k), usage={"rows": len(table)})

    def embed(self, request: EmbedRequest) -> TaskResult:
        texts = [text[: self._text_limit()] for text in request.input]
        for index, text in enumerate(texts):
            if not text.strip():
                raise InvalidInput(f"input[{index}] is an empty string; every string needs some text", param="input")
        prediction = self._embedded(texts)
        vectors = prediction.outputs[EMBEDDING_OUTPUT]
        return TaskResult(outputs={"embeddings": vectors.tolist()}, usage=prediction.usage)

    def _embedded(self, texts: list[str]) -> Prediction:
        vectors, tokens = self.embedder.embed(texts, lambda feeds: self.run(feeds)[self.engine_outputs[0]])
        return Prediction(
            outputs={EMBEDDING_OUTPUT: vectors},
            usage={"prompt_tokens": sum(tokens)},
            per_item={"prompt_tokens": tokens},
        )

    def _text_limit(self) -> int:
        assert self.pre.text is not None
        return self.pre.text.max_length * CHARS_PER_TOKEN

    def _ranked(self, batch: Tensor, k: int) -> list[list[dict[str, object]]]:
        dtype = _NUMPY[self.feeds[self.fed]]
        scores = in_chunks(
            list(batch), lambda rows: self.run({self.fed: np.stack(rows).astype(dtype)})[self.pre.scores or ""]
        )
        probabilities = _softmax(scores) if self.pre.scores_are == "logits" else scores
        return [[dict(item) for item in row] for row in top_k(probabilities, self.labels, k)]

    def _table(self, rows: Sequence[list[float] | dict[str, float]]) -> Tensor:
        width = self.manifest.engine.inputs[0].shape[1]
        names = self.pre.feature_names
        table: list[list[float]] = []
        for index, row in enumerate(rows):
            where = f"rows[{index}]"
            if isinstance(row, dict):
                if names is None:
                    raise InvalidInput(f"{where}: this model names no features; send each row as a list", param=where)
                missing, unknown = [n for n in names if n not in row], sorted(set(row) - set(names))
                if missing or unknown:
                    raise InvalidInput(
                        f"{where} lacks {missing} and has unknown {unknown}; expected the keys {', '.join(names)}",
                        param=where,
                    )
                row = [row[name] for name in names]
            if len(row) != width:
                raise InvalidInput(f"{where} has {len(row)} values; the model takes {width}", param=where)
            table.append(row)
        with np.errstate(over="ignore"):
            values = np.asarray(table, dtype=np.float64)
        if not np.isfinite(values).all():
            row_index = int(np.argwhere(~np.isfinite(values))[0][0])
            raise InvalidInput(f"rows[{row_index}] holds NaN or infinity; expected finite numbers", param="rows")
        return values


def _fed(value: Tensor, datatype: str) -> Tensor:
    """A checked V2 tensor as ONNX Runtime takes it: strings as str objects, numbers in their own dtype."""
    if datatype == "BYTES":
        texts = np.empty(value.shape, dtype=object)
        texts.ravel()[:] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in value.ravel()]
        return texts
    return np.asarray(value, dtype=_NUMPY[datatype])


def _softmax(logits: Tensor) -> Tensor:
    shifted: npt.NDArray[np.float64] = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(shifted - shifted.max(axis=1, keepdims=True))
    probabilities: Tensor = (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
    return probabilities
