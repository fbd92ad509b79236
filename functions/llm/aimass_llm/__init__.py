"""The llm domain: chat and text completion with a decoder and its KV cache."""

from aimass_llm.runtime import LlmRuntime as Runtime

__all__ = ["Runtime"]
