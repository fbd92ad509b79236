"""The vision domain: image classification."""

from aimass_vision.runtime import ImageClassificationRuntime as Runtime

__all__ = ["Runtime"]
