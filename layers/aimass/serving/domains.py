"""Finds the runtime class of a domain.

A domain lives in its own package, ``aimass_<domain>``, that exports ``Runtime``: the runtime of its models
that ONNX Runtime computes. A domain that serves models of other engines too (as MLServer serves many
frameworks behind one runtime interface) also exports ``RUNTIMES``, a mapping from a manifest's
``engine.format`` to the runtime class that serves it; the rest of the core never asks which engine it is.
In a function image the package sits beside the core at the task root, and the image carries only its own
domain. In a checkout each one lives in ``functions/<domain>/aimass_<domain>/`` and is found there, so that a
new domain directory is served without registering it anywhere.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from pathlib import Path

from aimass.errors import ModelLoadError
from aimass.serving.runtime import ModelRuntime
from aimass.store.manifest import EngineFormat

# layers/aimass/serving/domains.py -> the checkout's functions/ (absent inside a function image).
CHECKOUT_FUNCTIONS = Path(__file__).resolve().parents[3] / "functions"


def checkout_domains(functions: Path = CHECKOUT_FUNCTIONS) -> list[str]:
    """The domains under ``functions``, each made importable; none outside a checkout."""
    if not functions.is_dir():
        return []
    found = sorted(p.name for p in functions.iterdir() if (p / f"aimass_{p.name}" / "__init__.py").is_file())
    for domain in found:
        path = str(functions / domain)
        if path not in sys.path:
            sys.path.append(path)
    return found


def runtime_class(domain: str, engine: EngineFormat = "onnx") -> type[ModelRuntime]:
    """The class that serves ``domain``'s models of the ``engine`` format (a manifest's ``engine.format``)."""
    module_name = f"aimass_{domain}"
    checkout_domains()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise ModelLoadError(f"domain '{domain}' is not installed here (no package '{module_name}')") from None
    runtimes: Mapping[str, object] = {"onnx": getattr(module, "Runtime", None), **getattr(module, "RUNTIMES", {})}
    runtime = runtimes.get(engine)
    if runtime is None:
        served = ", ".join(sorted(f for f, r in runtimes.items() if r is not None)) or "none"
        raise ModelLoadError(
            f"domain '{domain}' serves no models of engine format '{engine}'; formats it serves: {served}",
            public=f"the {domain} runtime does not serve engine format '{engine}'",
        )
    if not (isinstance(runtime, type) and issubclass(runtime, ModelRuntime)):
        what = "'Runtime'" if engine == "onnx" else f"RUNTIMES['{engine}']"
        raise ModelLoadError(f"package '{module_name}' does not export a ModelRuntime subclass as {what}")
    return runtime
