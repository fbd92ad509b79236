"""Compare every precision (the builder's, and the GGUF's own blocks) against the fp32 reference: the numbers
that chose ``PRECISION``.

    python models/llm/smollm2/evaluate.py [precision ...]

Prints one JSON line per precision (greedy agreement, facts, decode rate, memory, graph size). Slower than a
build (one conversion per precision); run it when the source, the builder or the eval set changes. The decode
rates are measured in rounds over all the graphs, so that the machine's other load falls on each alike; each
line gives the lowest and highest.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[3]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from models.llm.smollm2 import convert, quality  # noqa: E402
from models.llm.smollm2.greedy import open_session  # noqa: E402
from models.llm.smollm2.recipe import EVAL_FILE  # noqa: E402
from models.llm.smollm2.source import gguf_path, load_reference, save_folder  # noqa: E402

BENCH_ROUNDS = 4


def main(precisions: list[str]) -> None:
    from tokenizers import Tokenizer

    with tempfile.TemporaryDirectory(prefix="smollm2-eval-") as scratch:
        folder = Path(scratch) / "hf"
        gguf = gguf_path()
        model, hf_tokenizer = load_reference(gguf)
        save_folder(model, hf_tokenizer, folder)
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        evals = quality.EvalSet.load(EVAL_FILE, tokenizer)
        stop = [hf_tokenizer.eos_token_id, 0]
        reference = quality.reference_answers(model, evals, stop)
        facts = quality.facts_correct(reference.questions, evals.answers, tokenizer)
        print(json.dumps({"precision": "reference (PyTorch fp32)", "facts_correct": facts}), flush=True)
        results: dict[Path, dict[str, Any]] = {}
        for precision in precisions:
            graph = Path(scratch) / precision / "model.onnx"
            convert.convert(folder, graph.parent / "raw", precision, gguf, graph)
            shutil.rmtree(graph.parent / "raw")
            answers = quality.graph_answers(open_session(graph), evals, stop)
            measured = {"precision": precision, **quality.compare(answers, reference, evals, tokenizer)}
            measured["size_mb"] = round(graph.stat().st_size / 1e6, 1)
            measured["first_answer"] = tokenizer.decode(answers.questions[0], skip_special_tokens=True)
            results[graph] = measured
        benches = [[quality.bench(graph, evals.prompts[0]) for graph in results] for _ in range(BENCH_ROUNDS)]
        for i, measured in enumerate(results.values()):
            rates = sorted(round(bench[i]["decode_tokens_per_s"]) for bench in benches)
            measured.update(benches[0][i], decode_tokens_per_s=[rates[0], rates[-1]])
            measured["peak_rss_mb"] = max(bench[i]["peak_rss_mb"] for bench in benches)
            print(json.dumps(measured), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(convert.PRECISIONS))
