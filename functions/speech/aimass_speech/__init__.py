"""The speech domain: spoken-command recognition."""

from aimass_speech.runtime import SpeechCommandsRuntime as Runtime

__all__ = ["Runtime"]
