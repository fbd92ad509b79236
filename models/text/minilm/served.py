"""The served path: the text domain's own runtime (``functions/text/aimass_text``) over the version being built.

The build measures quality through ``served_runtime``: the runtime the server loads, over the build directory
and its manifest, so whatever the server does to a string before the graph (the character cut, truncation,
padding, the ``tokenizer.json`` overrides) is what the quality gate measures, and a drift there fails the build.
The graph's own checks and the export's trace feed token ids directly (``graph_tokenizer``, ``encode``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from models.buildkit import BuildError
from models.text.minilm.spec import PAD_TOKEN

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from tokenizers import Tokenizer

    from aimass.serving.runtime import ModelRuntime
    from aimass.store.manifest import ModelManifest


def graph_tokenizer(path: Path) -> Tokenizer:
    """``tokenizer.json`` padding to the longest text of a batch: token ids for the trace and the graph checks."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
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


def served_runtime(directory: Path, manifest: ModelManifest) -> ModelRuntime:
    """The text domain's runtime over ``directory`` described by ``manifest``, loaded as the server loads it."""
    from aimass.serving.domains import runtime_class
    from aimass.serving.session import SessionFactory
    from aimass.settings import Settings
    from aimass.store.base import ModelArtifact

    runtime = runtime_class(manifest.domain, manifest.engine.format)(
        ModelArtifact(manifest=manifest, directory=directory), SessionFactory(Settings(model_store=directory.parent))
    )
    runtime.load()
    return runtime


def embed(runtime: ModelRuntime, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """What a request for ``texts`` gets: the runtime's ``predict`` on them as one BYTES tensor."""
    import numpy as np

    tensor = np.array([text.encode() for text in texts], dtype=object)
    output = runtime.manifest.outputs[0].name
    return np.asarray(runtime.predict({runtime.manifest.inputs[0].name: tensor}).outputs[output], dtype=np.float32)
