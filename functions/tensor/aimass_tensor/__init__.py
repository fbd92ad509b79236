"""The tensor domain: imported models, whatever they compute. Named tensors in, named tensors out, and the task
endpoints of the shapes it recognises (image and tabular classifiers, text embedders)."""

from aimass_tensor.runtime import TensorRuntime as Runtime

__all__ = ["Runtime"]
