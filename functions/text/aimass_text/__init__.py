"""The text domain: sentence embeddings."""

from aimass_text.runtime import TextEmbeddingRuntime as Runtime

__all__ = ["Runtime"]
