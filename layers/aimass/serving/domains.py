"""Finds the runtime class of a domain.

A domain lives in its own package, ``aimass_<domain>``, that exports ``Runtime``. In a function image the
package sits beside the core at the task root, and the image carries only its own domain. In a checkout
each one lives in ``functions/<domain>/aimass_<domain>/`` and is found there, so that a new domain
directory is served without registering it anywhere.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from aimass.errors import ModelLoadError
from aimass.serving.runtime import ModelRuntime

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


def runtime_class(domain: str) -> type[ModelRuntime]:
    module_name = f"aimass_{domain}"
    checkout_domains()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise ModelLoadError(f"domain '{domain}' is not installed here (no package '{module_name}')") from None
    runtime = getattr(module, "Runtime", None)
    if not (isinstance(runtime, type) and issubclass(runtime, ModelRuntime)):
        raise ModelLoadError(f"package '{module_name}' does not export a ModelRuntime subclass as 'Runtime'")
    return runtime
