"""Quality: the served path against the PyTorch reference, and paraphrases against unrelated pairs.

The served side is the text domain's runtime over the version being built (``served.served_runtime``), so what
is measured is what a request gets. Each number measured here goes into the manifest's ``quality`` and the
model card; the checks fail the build.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from models.buildkit import BuildError, console, sig
from models.text.minilm.served import embed
from models.text.minilm.spec import EMBEDDING_DIM, MAX_LENGTH, MIN_COSINE

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from tokenizers import Tokenizer

    from aimass.serving.runtime import ModelRuntime


def _cosine(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    import numpy as np

    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return (a64 * b64).sum(axis=1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))  # type: ignore[no-any-return]


def measure_quality(
    runtime: ModelRuntime,
    tokenizer: Tokenizer,
    reference: Any,
    eval_data: dict[str, Any],
) -> dict[str, Any]:
    """Served vs reference embeddings, and whether paraphrases score above unrelated pairs.

    ``runtime`` serves the version; ``tokenizer`` (its tokenizer.json) only counts the eval texts' tokens;
    ``reference`` is the SentenceTransformer (anything with its ``encode``).
    """
    import numpy as np
    from tokenizers import Tokenizer

    sentences: list[str] = eval_data["sentences"]
    paraphrases: list[list[str]] = eval_data["paraphrase_pairs"]
    unrelated: list[list[str]] = eval_data["unrelated_pairs"]

    # Every eval text, plus all sentences run together: longer than 256 tokens, so truncation is compared too.
    pair_texts = [text for pair in paraphrases + unrelated for text in pair]
    long_text = " ".join(sentences)
    texts = list(dict.fromkeys([*sentences, *pair_texts, long_text]))

    counter = Tokenizer.from_str(tokenizer.to_str())
    counter.no_truncation()
    counter.no_padding()
    sentence_tokens = [len(e.ids) for e in counter.encode_batch(sentences)]
    long_tokens = len(counter.encode(long_text).ids)
    if long_tokens <= MAX_LENGTH:
        raise BuildError(f"the long eval text has {long_tokens} tokens; it must exceed {MAX_LENGTH}")

    # Requests of a client's size: the runtime pads each of its chunks to the chunk's longest text.
    served = np.concatenate([embed(runtime, texts[i : i + 8]) for i in range(0, len(texts), 8)])
    expected = np.asarray(
        reference.encode(
            texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False, batch_size=16
        ),
        dtype=np.float32,
    )
    cosines = _cosine(served, expected)
    min_cosine = float(cosines.min())
    if min_cosine < MIN_COSINE:
        worst = texts[int(cosines.argmin())]
        raise BuildError(f"served vs reference cosine {min_cosine:.6f} < {MIN_COSINE} for {worst[:60]!r}")

    def pair_scores(pairs: list[list[str]]) -> npt.NDArray[np.float64]:
        left = embed(runtime, [a for a, _ in pairs])
        right = embed(runtime, [b for _, b in pairs])
        return _cosine(left, right)

    para, unrel = pair_scores(paraphrases), pair_scores(unrelated)
    if para.mean() <= unrel.mean():
        raise BuildError(f"paraphrases ({para.mean():.3f}) do not score above unrelated pairs ({unrel.mean():.3f})")

    return {
        "embedding_dim": EMBEDDING_DIM,
        "reference_texts": len(texts),
        "reference_min_cosine": sig(min_cosine),
        "reference_mean_cosine": sig(float(cosines.mean())),
        "reference_max_abs_diff": sig(float(np.abs(served - expected).max())),
        "reference_threshold_cosine": MIN_COSINE,
        "measured_through": "the text domain's runtime (aimass_text) over the built version, as the server loads it",
        "eval_sentence_tokens": {
            "min": min(sentence_tokens),
            "mean": sig(sum(sentence_tokens) / len(sentence_tokens)),
            "max": max(sentence_tokens),
        },
        "truncation_checked_tokens": long_tokens,
        "paraphrase_pairs": len(paraphrases),
        "unrelated_pairs": len(unrelated),
        "paraphrase_mean_cosine": sig(float(para.mean())),
        "paraphrase_min_cosine": sig(float(para.min())),
        "unrelated_mean_cosine": sig(float(unrel.mean())),
        "unrelated_max_cosine": sig(float(unrel.max())),
        "paraphrase_above_all_unrelated": sig(float((para > unrel.max()).mean())),
    }


def print_quality(quality: dict[str, Any]) -> None:
    console.print(
        f"served vs reference over {quality['reference_texts']} texts: "
        f"min cosine {quality['reference_min_cosine']}, mean {quality['reference_mean_cosine']}, "
        f"max |diff| {quality['reference_max_abs_diff']}"
    )
    console.print(
        f"paraphrase mean {quality['paraphrase_mean_cosine']} (min {quality['paraphrase_min_cosine']}) vs "
        f"unrelated mean {quality['unrelated_mean_cosine']} (max {quality['unrelated_max_cosine']}); "
        f"{quality['paraphrase_above_all_unrelated']:.0%} of paraphrases above every unrelated pair"
    )
