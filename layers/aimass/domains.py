"""Finds the runtime class of a domain.

A domain lives in its own package, ``aimass_<domain>``, that exports ``Runtime``. Function images carry
only their own domain's package, so a process serves exactly the domains it can import.
"""

from __future__ import annotations

import importlib

from aimass.errors import ModelLoadError
from aimass.runtime import ModelRuntime


def runtime_class(domain: str) -> type[ModelRuntime]:
    module_name = f"aimass_{domain}"
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
