"""Imported models: what an import costs, and the memory a served graph takes, by its size (bench/records/tensor.json).

    .venv/bin/python bench/tensor.py [--sizes 20 100 400] [--out bench/records/tensor.json] [--explore]

For each size (MiB of float32 weights: a chain of 1024 x 1024 MatMuls, made here with onnx.helper), in fresh
processes so that no size's allocations sit beside another's:

* ``import_s``: ``aimass.importing.import_graph`` on the bytes (read, check, session, two sample batches, the
  tensor runtime's load, the samples and the manifest), as ``aimass models import`` and the management API run it;
* memory, in a process that has imported the serving stack (``aimass.http.app``) and ONNX Runtime: its resident
  memory before (``base_mb``), the peak while a session is built from the graph's bytes (``build_peak_mb``), and
  what stays resident once the bytes are gone (``resident_mb``); ``build_factor`` and ``resident_factor`` are
  those over the base, per MiB of graph: the numbers ``aimass.importing.memory`` sizes an import with.

Target: the memory the import says the model needs (``memory_needed_mb``) holds a swap's peak, the base with the
version being replaced resident and the new one's session being built (``swap_peak_mb``: base + build + resident
over the base). Exits 1 when a size misses it (``--explore``: reports it, exits 0).

The cold start and warm overhead of the tensor function itself are ``bench/run.py --domains tensor``'s, as for
every domain (bench/workloads/tensor.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import machine_info, make_console, write_json  # noqa: E402
from bench.targets import Target, add_explore_flag, at_least, exit_status, passed  # noqa: E402

DEFAULT_SIZES = (20, 100, 400)

_MAKE = r"""
import sys
import numpy as np
from onnx import TensorProto, helper, numpy_helper

size, path = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(0)
initializers, nodes, last = [], [], "x"
for i in range(max(1, size // 4)):
    weights = (rng.standard_normal((1024, 1024)) * 0.01).astype(np.float32)
    initializers.append(numpy_helper.from_array(weights, f"w{i}"))
    nodes.append(helper.make_node("MatMul", [last, f"w{i}"], [f"h{i}"]))
    last = f"h{i}"
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1024])
y = helper.make_tensor_value_info(last, TensorProto.FLOAT, ["batch", 1024])
graph = helper.make_graph(nodes, "chain", [x], [y], initializer=initializers)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
open(path, "wb").write(model.SerializeToString())
print("{}")
"""

_MEMORY = r"""
import gc, json, resource, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
import numpy as np
import onnxruntime as ort
from aimass.http.app import create_app  # noqa: F401  (the serving stack, as a function holds it)
from aimass.serving.session import SessionFactory
from aimass.settings import Settings

def rss():
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20

base = rss()
data = Path(sys.argv[1]).read_bytes()
session = SessionFactory(Settings()).create(data, label="bench")
session.run(None, {"x": np.ones((2, 1024), np.float32)})
size = len(data) / 2**20
del data
gc.collect()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"graph_mib": size, "base_mb": base, "build_peak_mb": peak, "resident_mb": rss()}))
"""

_IMPORT = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from aimass.importing.importer import ImportSpec, import_graph
from aimass.serving.session import SessionFactory
from aimass.settings import Settings

data = Path(sys.argv[1]).read_bytes()
started = time.perf_counter()
done = import_graph(data, ImportSpec(name="chain"), Path(sys.argv[2]), SessionFactory(Settings()))
print(json.dumps({"import_s": time.perf_counter() - started, "memory_needed_mb": done.needed_mb}))
"""


def _run(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(size: int, scratch: Path) -> dict[str, Any]:
    graph = scratch / f"chain-{size}.onnx"
    _run(_MAKE, str(size), str(graph))
    memory = _run(_MEMORY, str(graph), str(REPO / "layers"))
    imported = _run(_IMPORT, str(graph), str(scratch / f"import-{size}"), str(REPO / "layers"))
    graph_mib = memory["graph_mib"]
    return {
        **memory,
        **imported,
        "build_factor": round((memory["build_peak_mb"] - memory["base_mb"]) / graph_mib, 2),
        "resident_factor": round((memory["resident_mb"] - memory["base_mb"]) / graph_mib, 2),
    }


def swap_peak_mb(found: dict[str, Any]) -> float:
    """The base, plus a session being built, plus the version it replaces still resident (each over the base)."""
    base, build, resident = (float(found[key]) for key in ("base_mb", "build_peak_mb", "resident_mb"))
    return base + (build - base) + (resident - base)


def targets(results: dict[str, Any]) -> list[Target]:
    return [
        at_least(f"tensor {name} memory_needed_mb over swap_peak_mb", found["memory_needed_mb"], found["swap_peak_mb"])
        for name, found in results.items()
        if isinstance(found, dict) and "swap_peak_mb" in found
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="graph sizes, MiB")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "records" / "tensor.json")
    add_explore_flag(parser)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": machine_info(("onnxruntime", "numpy")),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with tempfile.TemporaryDirectory(prefix="aimass-bench-tensor-") as scratch:
        for size in args.sizes:
            found = measure(size, Path(scratch))
            found["swap_peak_mb"] = round(swap_peak_mb(found), 1)
            results[f"{size}_mib"] = found
            print(
                f"{found['graph_mib']:6.0f} MiB graph: import {found['import_s']:6.2f} s; "
                f"base {found['base_mb']:5.0f} MB, "
                f"build peak {found['build_peak_mb']:6.0f} MB ({found['build_factor']:.2f}x the graph over the base), "
                f"resident {found['resident_mb']:6.0f} MB ({found['resident_factor']:.2f}x); the import sizes it at "
                f"{found['memory_needed_mb']:,} MB"
            )
    judged = targets(results)
    results["passed"] = passed(judged)
    write_json(args.out, results)
    print(f"wrote {args.out}")
    return exit_status(judged, explore=args.explore, console=make_console(), script="bench/tensor.py")


if __name__ == "__main__":
    raise SystemExit(main())
