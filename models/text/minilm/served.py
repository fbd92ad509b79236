"""The served path, exactly as the server runs it: ``tokenizer.json`` with its overrides, then one engine call.

The build measures quality through these functions, so what it checks is what a request gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from models.buildkit import BuildError
from models.text.minilm.spec import ENGINE_OUTPUT, MAX_LENGTH, PAD_TOKEN

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import onnxruntime as ort
    from tokenizers import Tokenizer


def served_tokenizer(path: Path) -> Tokenizer:
    """Load tokenizer.json the way the server does: truncate at 256, pad to the longest in the batch.

    The shipped file configures fixed padding and truncation at 128; both are overridden here, because
    padding every request to a fixed length wastes compute and 128 is not where the reference truncates.
    """
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=MAX_LENGTH)
    # No length=: pad to the longest text in the batch.
    tokenizer.enable_padding(pad_id=pad_id(tokenizer), pad_token=PAD_TOKEN)
    return tokenizer


def pad_id(tokenizer: Tokenizer) -> int:
    """The id the server pads with; the manifest records it."""
    pad: int | None = tokenizer.token_to_id(PAD_TOKEN)
    if pad is None:
        raise BuildError(f"tokenizer.json has no {PAD_TOKEN} token")
    return pad


def encode(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Token ids and attention mask, int64 [batch, longest], as the graph takes them."""
    import numpy as np

    encodings = tokenizer.encode_batch(list(texts))
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask


def embed(session: ort.InferenceSession, tokenizer: Tokenizer, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """The served embedding: tokenizer.json, then one engine call."""
    ids, mask = encode(tokenizer, texts)
    (embeddings,) = session.run([ENGINE_OUTPUT], {"input_ids": ids, "attention_mask": mask})
    return embeddings  # type: ignore[no-any-return]
