"""Operator-side model import: a file of any framework this tool reads, made into the ONNX graph the serving core
imports (``aimass.importing``). scikit-learn goes through skl2onnx, PyTorch through ``torch.onnx.export``; both are
build-time tools, imported only when a model of theirs is converted, and never in a function image.

``load_source`` reads what the command line names (a .onnx file, a folder, a scikit-learn pickle, a TorchScript
module); ``from_sklearn`` and ``from_torch`` convert objects a notebook or a training pipeline holds.
"""

from aimass_tools.importing.sklearn import from_sklearn
from aimass_tools.importing.sources import Source, load_source
from aimass_tools.importing.torch_export import from_torch

__all__ = ["Source", "from_sklearn", "from_torch", "load_source"]
