"""The manifest of this model version: PocketSphinx's files by role, the served tensors, the measured quality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aimass.store.manifest import EngineSpec, ModelManifest, TensorSpec, file_entry
from models.buildkit import timestamp
from models.speech.sphinx.spec import (
    FILES,
    LANGUAGE_MODEL,
    LICENSE_FILE,
    MAX_BATCH_SECONDS,
    MAX_SECONDS,
    NAME,
    SAMPLE_RATE,
    SAMPLES_FILE,
    VERSION,
)

# Served: one waveform in, its transcript out. The engine's own: 16-bit PCM in, the best hypothesis out.
WAVEFORM = TensorSpec(name="waveform", datatype="FP32", shape=(1, -1))
TEXT = TensorSpec(name="text", datatype="BYTES", shape=(1,))
PCM = TensorSpec(name="pcm", datatype="INT16", shape=(-1,))
HYPOTHESIS = TensorSpec(name="hypothesis", datatype="BYTES", shape=(1,))


def build_manifest(work: Path, quality: dict[str, Any], *, pocketsphinx: str) -> ModelManifest:
    """Describe the files copied into ``work`` (hashed here, so call it after they are all written)."""
    listed = sorted([*FILES, LICENSE_FILE, SAMPLES_FILE])
    return ModelManifest(
        name=NAME,
        version=VERSION,
        domain="speech",
        task="transcription",
        validation=SAMPLES_FILE,  # run by every serving process before this version takes traffic
        description=(
            "Open-vocabulary US English speech recognition: CMU PocketSphinx with its generic US English "
            "acoustic model (HMMs with phonetically tied Gaussian mixtures), the CMU pronouncing dictionary "
            "(134,860 entries) and a 3-gram language model. Audio up to max_seconds in, words with their "
            "times out."
        ),
        source=(
            f"the acoustic model, dictionary and language model shipped in the PyPI wheel pocketsphinx "
            f"{pocketsphinx}, copied unchanged by models/speech/sphinx/build.py"
        ),
        license="BSD-2-Clause (CMU Sphinx; acoustic model: Alpha Cephei Inc.); see LICENSE and acoustic/README",
        files=tuple(file_entry(work, path) for path in listed),
        engine=EngineSpec(
            format="pocketsphinx",
            file=LANGUAGE_MODEL,
            parts={key: path for path, (_, key) in FILES.items() if key is not None},
            inputs=(PCM,),
            outputs=(HYPOTHESIS,),
        ),
        inputs=(WAVEFORM,),
        outputs=(TEXT,),
        preprocessing={
            "sample_rate": SAMPLE_RATE,
            "max_seconds": MAX_SECONDS,
            "max_batch_seconds": MAX_BATCH_SECONDS,
            "features": "PocketSphinx's own front end, as acoustic/feat.params sets it (25 filters 130-6800 Hz, "
            "13 cepstra with deltas, cepstral mean normalised over the whole utterance)",
        },
        quality=quality,
        created_at=timestamp(),
    )
