"""Chat and text generation: a decoder graph with a KV cache, stepped one token at a time.

The graph has onnxruntime-genai's decoder signature: ``input_ids``, ``attention_mask`` (past and new tokens),
``position_ids`` where the graph has it, and ``past_key_values.{i}.key/value`` in; ``logits`` and
``present.{i}.key/value`` out. The layer count, KV heads, head size and cache datatype are read from the
graph's inputs, so one runtime serves any size of model exported that way. The prompt runs once (prefill),
then each step feeds only the new token and the cache the previous step returned.

Generations do not step alone: each model's engine (``aimass_llm.batching``) runs every running generation
in one shared step per token, so concurrent requests raise throughput instead of queueing. ``n`` choices share
their prompt: it runs once, and its cache is repeated into one row per choice.
"""

from __future__ import annotations

import queue
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal, overload

import numpy as np
import onnxruntime as ort
from pydantic import ConfigDict, Field
from tokenizers import Tokenizer

from aimass.errors import InvalidInput, ModelLoadError
from aimass.schema import Schema
from aimass.serving.generation import (
    ChatMessage,
    Generation,
    GenerationParams,
    GenerationUsage,
    TextGenerator,
    TokenEvent,
    TokenLogprob,
)
from aimass.serving.runtime import ModelRuntime, Prediction, Tensor
from aimass_llm.batching import Engine, Job, Layout
from aimass_llm.sampling import choose, penalised
from aimass_llm.text import TextStream

Array = np.ndarray[Any, Any]
_PAST = re.compile(r"^past_key_values\.(\d+)\.key$")
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class KvCache(Schema):
    """What the manifest says of the graph's KV cache (its ``preprocessing.kv_cache``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)


class LlmPreprocessing(Schema):
    """The ``preprocessing`` block of an llm model's manifest."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tokenizer: str = Field(default="tokenizer.json", description="HF tokenizer.json among the model's files")
    context_length: int = Field(gt=1, description="tokens the model attends to: prompt and completion together")
    eos_token_id: int | list[int] = Field(description="token(s) that end the assistant's turn")
    stop_token_ids: list[int] = Field(
        default_factory=list, description="more tokens that end a reply (a model's end-of-text besides its end-of-turn)"
    )
    bos_token_id: int | None = None
    add_bos: bool = Field(default=False, description="prepend bos_token_id to every prompt")
    chat_template: Literal["chatml"] = "chatml"
    default_system: str | None = Field(default=None, description="the system message of a chat that has none")
    default_max_tokens: int = Field(default=256, gt=0, description="tokens generated when a request sets no limit")
    kv_cache: KvCache | None = Field(
        default=None, description="the cache's heads and head size, where the graph names them instead of fixing them"
    )
    cache_layout: Layout = Field(
        default="prefix",
        description="where a step writes each row's new cache entry: 'prefix' right after the row's tokens "
        "(GroupQueryAttention, onnxruntime-genai's decoders), 'appended' at the end of the padded cache (attention "
        "that concatenates past and new; positions from position_ids)",
    )
    max_batch_rows: int = Field(default=16, gt=0, description="most rows (choices of all requests) in one step")
    batch_cache_mb: int = Field(
        default=512,
        gt=0,
        description="most memory the running batch's padded KV cache may reach (rows x the longest a row may "
        "grow); a request that would pass it waits for rows to leave, and one request alone always runs",
    )


class LlmRuntime(ModelRuntime, TextGenerator):
    # Prompt and completion tokens are billed alike, as their sum; both are in the usage for clients.
    billing_unit: ClassVar[str | None] = "tokens"

    def load(self) -> None:
        self.pre = self.preprocessing(LlmPreprocessing)
        spec = self.artifact.read(self.pre.tokenizer).decode("utf-8")
        self.tokenizer = Tokenizer.from_str(spec)
        # A second tokenizer reads the text of chat messages: one that never parses special tokens in it.
        self.plain_tokenizer = Tokenizer.from_str(spec)
        self.plain_tokenizer.encode_special_tokens = True
        self.im_start, self.im_end = (self._special(marker) for marker in ("<|im_start|>", "<|im_end|>"))
        eos = self.pre.eos_token_id
        self.eos = frozenset([eos] if isinstance(eos, int) else eos) | frozenset(self.pre.stop_token_ids)
        self.session = self.engine_session()
        graph = {node.name: node for node in self.session.get_inputs()}
        layers = sorted(int(m.group(1)) for name in graph if (m := _PAST.match(name)))
        if not layers or layers != list(range(len(layers))) or "input_ids" not in graph:
            raise ModelLoadError(
                f"{self.label}: the graph is not a decoder with a KV cache (inputs {sorted(graph)})",
                public="its graph has no input_ids and past_key_values.{i}.key inputs",
            )
        past = graph["past_key_values.0.key"]
        # A graph may name a cache dimension instead of fixing it (an exporter's "kv_cache_dim"): then the
        # manifest's kv_cache block gives it.
        declared = self.pre.kv_cache
        heads = past.shape[1] if isinstance(past.shape[1], int) else declared.kv_heads if declared else None
        head_dim = past.shape[3] if isinstance(past.shape[3], int) else declared.head_dim if declared else None
        if heads is None or head_dim is None or past.type not in _DTYPES:
            raise ModelLoadError(
                f"{self.label}: past_key_values.0.key is {past.type} {past.shape}; expected float [batch, kv_heads, "
                "past, head_dim] with kv_heads and head_dim fixed in the graph or given by preprocessing.kv_cache",
                public="its past_key_values inputs have no known kv_heads and head_dim",
            )
        self.layers, self.kv_heads, self.head_dim = len(layers), heads, head_dim
        self.cache_dtype = _DTYPES[past.type]
        self.feeds_positions = "position_ids" in graph
        self.feeds_mask = "attention_mask" in graph
        self.cache_names = [f"present.{i}.{kind}" for i in range(self.layers) for kind in ("key", "value")]
        self.served_input, self.served_output = self.manifest.inputs[0].name, self.manifest.outputs[0].name
        row_bytes = 2 * self.layers * self.kv_heads * self.head_dim * np.dtype(self.cache_dtype).itemsize
        self.engine = Engine(
            self, self.pre.cache_layout, row_bytes=row_bytes, cache_bytes=self.pre.batch_cache_mb * 2**20,
            max_rows=self.pre.max_batch_rows,
        )  # fmt: skip

    # --- TextGenerator ------------------------------------------------------------------------

    @property
    def context_length(self) -> int:
        return self.pre.context_length

    @property
    def default_max_tokens(self) -> int:
        return self.pre.default_max_tokens

    def chat_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        turns = list(messages)
        if self.pre.default_system is not None and (not turns or turns[0].role != "system"):
            turns.insert(0, ChatMessage("system", self.pre.default_system))
        # The template's markers are the only special tokens: a message that spells "<|im_end|>" is read as the
        # text it is, so no message can close its turn and open another role's. The tokenizer reads the text
        # between special tokens on its own, so encoding it piece by piece gives what encoding it whole would.
        ids: list[int] = []
        for turn in turns:
            ids += [self.im_start, *self.literal(f"{turn.role}\n{turn.content}"), self.im_end, *self.literal("\n")]
        return self._with_bos([*ids, self.im_start, *self.literal("assistant\n")])

    def literal(self, text: str) -> list[int]:
        """The tokens of ``text`` with any special token it spells read as plain text."""
        return self.plain_tokenizer.encode(text, add_special_tokens=False).ids

    def text_tokens(self, text: str) -> list[int]:
        return self._with_bos(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def _special(self, token: str) -> int:
        found = self.tokenizer.token_to_id(token)
        if found is None:
            raise ModelLoadError(
                f"{self.label}: the tokenizer has no {token} token, which the chatml template needs",
                public=f"its tokenizer has no {token} token",
            )
        return int(found)

    def _with_bos(self, ids: list[int]) -> list[int]:
        if self.pre.add_bos and self.pre.bos_token_id is not None:
            return [self.pre.bos_token_id, *ids]
        return ids

    def generate(self, prompt: Sequence[int], params: GenerationParams) -> _Decoding:
        context = self.context_length
        if len(prompt) >= context:
            raise InvalidInput(
                f"the prompt is {len(prompt):,} tokens; model '{self.manifest.name}' has a context of {context:,} "
                "tokens, for the prompt and the completion together: shorten the prompt",
                param="messages",
            )
        if not prompt:
            raise InvalidInput("the prompt is empty: it needs at least one token", param="prompt")
        limited = min(params.max_tokens, context - len(prompt))
        return _Decoding(self, list(prompt), params, limited)

    # --- the engine ---------------------------------------------------------------------------

    @overload
    def step(self, ids: Array, mask: Array, positions: Array, cache: list[Array]) -> tuple[Array, list[Array]]: ...
    @overload
    def step(self, ids: Array, mask: Array, positions: Array, cache: SharedCache) -> tuple[Array, SharedCache]: ...

    def step(
        self, ids: Array, mask: Array, positions: Array, cache: list[Array] | SharedCache
    ) -> tuple[Array, list[Array] | SharedCache]:
        """Run ``ids`` [rows, seq] with their ``mask`` [rows, past + seq] and ``positions`` [rows, seq]; the last
        position's logits [rows, vocab] and the new cache (a shared cache: itself, written in place)."""
        if isinstance(cache, SharedCache):
            return cache.run(self, ids, mask, positions), cache
        feeds: dict[str, np.ndarray[Any, Any]] = {"input_ids": ids}
        if self.feeds_mask:
            feeds["attention_mask"] = mask
        if self.feeds_positions:
            feeds["position_ids"] = positions
        for i in range(self.layers):
            feeds[f"past_key_values.{i}.key"] = cache[2 * i]
            feeds[f"past_key_values.{i}.value"] = cache[2 * i + 1]
        logits, *present = self.session.run(["logits", *self.cache_names], feeds)
        return np.asarray(logits[:, -1, :], dtype=np.float32), present

    def bind(self, buffers: list[np.ndarray[Any, Any]]) -> SharedCache:
        return SharedCache(self, buffers)

    def prefill(self, prompt: Sequence[int]) -> tuple[np.ndarray[Any, Any], list[np.ndarray[Any, Any]]]:
        """The prompt alone, from an empty cache: its last logits [1, vocab] and its cache."""
        length = len(prompt)
        empty = [np.zeros((1, self.kv_heads, 0, self.head_dim), dtype=self.cache_dtype) for _ in self.cache_names]
        ids = np.array([prompt], dtype=np.int64)
        return self.step(ids, np.ones((1, length), dtype=np.int64), np.arange(length, dtype=np.int64)[None], empty)

    def token_logprob(self, token: int, logprob: float) -> TokenLogprob:
        text = self.tokenizer.decode([token], skip_special_tokens=False)
        return TokenLogprob(text, logprob, list(text.encode("utf-8")))

    # --- V2 -----------------------------------------------------------------------------------

    def predict(self, inputs: Mapping[str, Tensor]) -> Prediction:
        """Each prompt string completed greedily, up to the model's default number of tokens (plain text, no
        chat template): the V2 data plane's view of the model. The OpenAI routes offer every other setting."""
        generations: list[_Decoding] = []
        for index, item in enumerate(inputs[self.served_input].ravel().tolist()):
            try:
                text = item.decode("utf-8") if isinstance(item, bytes) else str(item)
            except UnicodeDecodeError:
                raise InvalidInput(
                    f"'{self.served_input}'[{index}] is not valid UTF-8", param=self.served_input
                ) from None
            ids = self.text_tokens(text)
            if not ids:
                raise InvalidInput(f"'{self.served_input}'[{index}] is empty", param=self.served_input)
            generations.append(self.generate(ids, GenerationParams(max_tokens=self.default_max_tokens, temperature=0)))
        # Every prompt joins the batch now, so the prompts of one request are written together.
        for generation in generations:
            generation.start()
        completions, prompts, written = [], [], []
        for generation in generations:
            completions.append("".join(event.text for event in generation).encode("utf-8"))
            prompts.append(generation.usage.prompt_tokens)
            written.append(generation.usage.completion_tokens)
        out = np.empty(len(completions), dtype=object)
        out[:] = completions
        usage = GenerationUsage(sum(prompts), sum(written)).counts()
        per_item = {
            "prompt_tokens": prompts,
            "completion_tokens": written,
            "tokens": [p + c for p, c in zip(prompts, written, strict=True)],
        }
        return Prediction(outputs={self.served_output: out}, usage=usage, per_item=per_item)


class SharedCache:
    """A batch's cache buffers, bound as both the past and the present of every layer: ONNX Runtime's
    GroupQueryAttention then writes each new entry in place, and a step copies no cache at all."""

    def __init__(self, runtime: LlmRuntime, buffers: list[np.ndarray[Any, Any]]) -> None:
        self.buffers = buffers  # the binding reads their memory: they live as long as it does
        self.binding = runtime.session.io_binding()
        self.binding.bind_output("logits")  # first: get_outputs()[0]
        for i, buffer in enumerate(buffers):
            layer, kind = divmod(i, 2)
            value = ort.OrtValue.ortvalue_from_numpy(buffer)
            self.binding.bind_ortvalue_input(f"past_key_values.{layer}.{('key', 'value')[kind]}", value)
            self.binding.bind_ortvalue_output(runtime.cache_names[i], value)

    def run(
        self,
        runtime: LlmRuntime,
        ids: np.ndarray[Any, Any],
        mask: np.ndarray[Any, Any],
        positions: np.ndarray[Any, Any],
    ) -> np.ndarray[Any, Any]:
        self.binding.bind_cpu_input("input_ids", ids)
        if runtime.feeds_mask:
            self.binding.bind_cpu_input("attention_mask", mask)
        if runtime.feeds_positions:
            self.binding.bind_cpu_input("position_ids", positions)
        runtime.session.run_with_iobinding(self.binding)
        logits = self.binding.get_outputs()[0].numpy()
        return np.asarray(logits[:, -1, :], dtype=np.float32)


class _Choice:
    """One of the ``n`` completions: its sampler, its text and the counts its penalties read."""

    def __init__(self, runtime: LlmRuntime, params: GenerationParams, index: int) -> None:
        self.index = index
        self.text = TextStream(runtime.tokenizer, params.stop)
        self.counts: dict[int, int] = {}
        self.written = 0
        self.last = -1  # the token chosen last: what the next step feeds
        self.done = False
        # Each choice draws from its own stream, so a seeded request repeats whatever n is.
        # Any integer is a seed (OpenAI's are signed): numpy's are non-negative, so it is taken modulo 2**64.
        self.rng = np.random.default_rng(None if params.seed is None else [params.seed % 2**64, index])


class _Decoding(Generation, Job):
    """A generation as its reader sees it (events, one by one) and as the engine sees it (a job of rows).

    The engine thread chooses the tokens and puts each event on a queue; the reader's thread takes them off.
    """

    def __init__(self, runtime: LlmRuntime, prompt: list[int], params: GenerationParams, max_tokens: int) -> None:
        super().__init__(GenerationUsage(prompt_tokens=len(prompt)))
        self.runtime, self.prompt, self.params, self.max_tokens = runtime, prompt, params, max_tokens
        self.rows, self.longest = params.n, len(prompt) + max_tokens
        self.choices = [_Choice(runtime, params, i) for i in range(params.n)]
        self.steps = 0  # engine runs with this generation in them, the prompt's included
        self._events: queue.SimpleQueue[TokenEvent | _Ended] = queue.SimpleQueue()
        self._started = False

    def start(self) -> None:
        """Join the engine's batch now (iterating starts it too)."""
        if not self._started:
            self._started = True
            self.runtime.engine.submit(self)

    def __iter__(self) -> Iterator[TokenEvent]:
        if self.stopped:
            return
        self.start()
        ended = False
        try:
            while not isinstance(item := self._events.get(), _Ended):
                yield item
            ended = True
            if item.error is not None:
                raise item.error
        finally:
            if not ended:
                self.stop()  # the reader left early: the rows leave the batch at the next token boundary

    # --- Job: run on the engine's thread ------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        return self.stopped

    def prefill(self) -> tuple[np.ndarray[Any, Any], list[np.ndarray[Any, Any]]] | None:
        return None if self.stopped else self.runtime.prefill(self.prompt)

    def first(self, logits: np.ndarray[Any, Any]) -> list[bool]:
        return [self._next(choice, logits) for choice in self.choices]

    def next(self, row: int, logits: np.ndarray[Any, Any]) -> bool:
        return self._next(self.choices[row], logits)

    def last_token(self, row: int) -> int:
        return self.choices[row].last

    def stepped(self) -> None:
        self.steps += 1

    def finish(self, error: BaseException | None = None) -> None:
        self._events.put(_Ended(error))

    def _next(self, choice: _Choice, logits: np.ndarray[Any, Any]) -> bool:
        """Choose the choice's next token and send its event; whether the choice goes on."""
        params, runtime = self.params, self.runtime
        scores = penalised(logits, choice.counts, params.presence_penalty, params.frequency_penalty)
        picked = choose(
            scores, temperature=params.temperature, top_p=params.top_p, rng=choice.rng, logprobs=params.logprobs,
            top_logprobs=params.top_logprobs if params.logprobs else 0,
        )  # fmt: skip
        token = picked.token
        self.usage.completion_tokens += 1
        choice.written += 1
        choice.counts[token] = choice.counts.get(token, 0) + 1
        choice.last = token
        finish: Literal["stop", "length"] | None = None
        if token in runtime.eos:
            text, finish = choice.text.flush(), "stop"
        else:
            text = choice.text.push(token)
            if choice.text.stopped:
                finish = "stop"
            elif choice.written == self.max_tokens:
                text, finish = text + choice.text.flush(), "length"
        choice.done = finish is not None
        logprob: TokenLogprob | None = None
        top: tuple[TokenLogprob, ...] = ()
        if params.logprobs and picked.logprob is not None:
            logprob = runtime.token_logprob(token, picked.logprob)
            top = tuple(runtime.token_logprob(t, lp) for t, lp in picked.top)
        self._events.put(TokenEvent(choice.index, text, logprob, top, finish))
        return not choice.done


class _Ended:
    """The last item of a generation's queue: it ended, whole or with ``error``."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error
