"""Quality and speed: greedy answers of a graph against the fp32 PyTorch reference, facts, decode rate and memory.

Each number measured here goes into the manifest's ``quality`` and the model card; the gates fail the build.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.buildkit import sig
from models.llm.smollm2 import greedy
from models.llm.smollm2.chat import CHATML
from models.llm.smollm2.recipe import BENCH_THREADS, NEW_TOKENS

if TYPE_CHECKING:
    import onnxruntime as ort
    from tokenizers import Tokenizer

BENCH_TOKENS = 128


@dataclass(frozen=True)
class EvalSet:
    """Prompts as token ids (rendered with the chat template), and the factual questions with their answers."""

    prompts: list[list[int]]
    questions: list[list[int]]
    answers: list[str]  # a regular expression each answer must contain, case-insensitive

    @classmethod
    def load(cls, path: Path, tokenizer: Tokenizer) -> EvalSet:
        document = json.loads(path.read_text())

        def ids(text: str) -> list[int]:
            prompt = CHATML.render([{"role": "user", "content": text}])
            return list(tokenizer.encode(prompt, add_special_tokens=False).ids)

        facts = document["facts"]
        return cls(
            prompts=[ids(text) for text in document["prompts"]],
            questions=[ids(fact["question"]) for fact in facts],
            answers=[fact["expect"] for fact in facts],
        )


@dataclass(frozen=True)
class Answers:
    """Greedy continuations of every eval prompt and question."""

    prompts: list[list[int]]
    questions: list[list[int]]


def reference_answers(model: Any, evals: EvalSet, stop: list[int]) -> Answers:
    """The fp32 PyTorch model's greedy tokens (no sampling, its own KV cache)."""
    import torch

    def run(prompt: list[int]) -> list[int]:
        with torch.no_grad():
            out = model.generate(
                torch.tensor([prompt]),
                attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                max_new_tokens=NEW_TOKENS,
                do_sample=False,
                eos_token_id=stop,
                pad_token_id=stop[0],
            )
        return [int(t) for t in out[0, len(prompt) :]]

    return Answers([run(p) for p in evals.prompts], [run(q) for q in evals.questions])


def graph_answers(session: ort.InferenceSession, evals: EvalSet, stop: list[int]) -> Answers:
    def run(prompt: list[int]) -> list[int]:
        return greedy.greedy(session, prompt, NEW_TOKENS, stop)[0]

    return Answers([run(p) for p in evals.prompts], [run(q) for q in evals.questions])


def prefix_agreement(got: Sequence[object], want: Sequence[object]) -> float:
    """The share of the reference's tokens matched before the first difference (1.0: the same answer)."""
    same = 0
    for a, b in zip(got, want, strict=False):
        if a != b:
            break
        same += 1
    # Over the longer answer: an answer that stops early, or runs on past the reference's end, is not the same.
    return same / max(len(got), len(want), 1)


def facts_pattern_found(text: str, pattern: str) -> bool:
    """Does the answer hold the expected word (a regular expression, case-insensitive, whole words)?"""
    return bool(re.search(rf"\b(?:{pattern})\b", text, re.IGNORECASE))


def facts_correct(answers: list[list[int]], expected: list[str], tokenizer: Tokenizer) -> int:
    texts = [tokenizer.decode(tokens, skip_special_tokens=True) for tokens in answers]
    return sum(facts_pattern_found(text, pattern) for text, pattern in zip(texts, expected, strict=True))


def compare(got: Answers, want: Answers, evals: EvalSet, tokenizer: Tokenizer) -> dict[str, Any]:
    agreements = [prefix_agreement(g, w) for g, w in zip(got.prompts, want.prompts, strict=True)]
    return {
        "prompts": len(agreements),
        "new_tokens": NEW_TOKENS,
        "mean_prefix_agreement": sig(sum(agreements) / len(agreements)),
        "identical_answers": sum(a == 1.0 for a in agreements),
        "facts": len(evals.answers),
        "facts_correct": facts_correct(got.questions, evals.answers, tokenizer),
    }


def bench(graph: Path, prompt: list[int]) -> dict[str, Any]:
    """Decode rate and peak memory of one stream, in a fresh process holding only the graph and the loop."""
    command = [sys.executable, greedy.__file__, str(graph), json.dumps(prompt), str(BENCH_TOKENS), str(BENCH_THREADS)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "decode_tokens_per_s": sig(measured["decode_tokens_per_s"]),
        "peak_rss_mb": sig(measured["peak_rss_mb"]),
        "threads": BENCH_THREADS,
        "bench_tokens": BENCH_TOKENS,
    }
