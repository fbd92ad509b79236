"""Quality through the API: the evaluation set asked of the built model as a client asks it.

The graph's own greedy loop (``greedy.py``) says what the weights answer; this says what a user gets: each
prompt is sent to ``POST /v1/chat/completions`` of the app (``temperature`` 0, the same number of new tokens)
with the messages as a user writes them, so the served chat template, tokenizer, stop tokens, sampler,
batching engine and response all stand between the question and the answer. Tokens are compared by their
bytes, as the answer's ``logprobs`` give them, with the reference's tokens spelled the same way.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from models.buildkit import sig
from models.llm.smollm2.quality import Answers, prefix_agreement
from models.llm.smollm2.recipe import NAME, NEW_TOKENS, VERSION


def token_bytes(tokenizer: Any, tokens: Sequence[int]) -> list[bytes]:
    """Each token as the API's logprobs spell it: the token decoded alone, special tokens included."""
    return [tokenizer.decode([token], skip_special_tokens=False).encode("utf-8") for token in tokens]


def served_quality(version_dir: Path, eval_file: Path, reference: Answers, tokenizer: Any) -> dict[str, Any]:
    """Agreement with ``reference``, identical answers and facts, measured through the HTTP API of an app that
    serves ``version_dir`` (a built, sealed version)."""
    from fastapi.testclient import TestClient

    from aimass.http.app import build_app
    from aimass.settings import Settings
    from models.llm.smollm2.quality import EvalSet, facts_pattern_found

    document = json.loads(eval_file.read_text())
    prompts = list(document["prompts"])
    questions = [fact["question"] for fact in document["facts"]]
    expected = EvalSet.load(eval_file, tokenizer).answers
    with tempfile.TemporaryDirectory(prefix="smollm2-served-") as scratch:
        store = Path(scratch)
        (store / NAME).mkdir()
        (store / NAME / VERSION).symlink_to(version_dir.resolve(), target_is_directory=True)
        settings = Settings(model_store=store, domains=("llm",), metering="off", alias_check_s=0)
        # A log line per request would bury the build's own report.
        logging.disable(logging.INFO)
        try:
            with TestClient(build_app(settings)) as client:

                def ask(text: str) -> tuple[list[bytes], str]:
                    body = {
                        "model": NAME,
                        "messages": [{"role": "user", "content": text}],
                        "temperature": 0,
                        "max_tokens": NEW_TOKENS,
                        "logprobs": True,
                    }
                    response = client.post("/v1/chat/completions", json=body)
                    response.raise_for_status()
                    choice = response.json()["choices"][0]
                    return [bytes(t["bytes"]) for t in choice["logprobs"]["content"]], choice["message"]["content"]

                answers = [ask(text) for text in prompts]
                replies = [ask(text)[1] for text in questions]
        finally:
            logging.disable(logging.NOTSET)
    want = [token_bytes(tokenizer, tokens) for tokens in reference.prompts]
    agreements = [prefix_agreement(got, ref) for (got, _), ref in zip(answers, want, strict=True)]
    return {
        "route": "POST /v1/chat/completions (temperature 0, the user's message only)",
        "mean_prefix_agreement": sig(sum(agreements) / len(agreements)),
        "identical_answers": sum(a == 1.0 for a in agreements),
        "facts_correct": sum(
            facts_pattern_found(reply, pattern) for reply, pattern in zip(replies, expected, strict=True)
        ),
    }
