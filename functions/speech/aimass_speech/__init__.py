"""The speech domain: spoken-command recognition (ONNX) and open-vocabulary English transcription (PocketSphinx).

``Runtime`` serves the domain's ONNX models; ``RUNTIMES`` maps each engine format a manifest may name to the
runtime that serves it (``aimass.serving.domains``).
"""

from aimass_speech.runtime import SpeechCommandsRuntime as Runtime
from aimass_speech.sphinx_runtime import SphinxRuntime

RUNTIMES = {"onnx": Runtime, "pocketsphinx": SphinxRuntime}

__all__ = ["RUNTIMES", "Runtime"]
