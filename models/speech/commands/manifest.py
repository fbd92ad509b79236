"""The manifest of this model version: what the server loads, how it reads audio, and the measured quality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aimass.store.manifest import EngineSpec, ModelManifest, TensorSpec, file_entry
from models.buildkit import timestamp
from models.speech.commands.export import INPUT, OUTPUT
from models.speech.commands.spec import (
    CLIP_SAMPLES,
    F_MAX,
    F_MIN,
    FLOOR,
    HOP,
    LABELS,
    MAX_SECONDS,
    N_FFT,
    N_MELS,
    NAME,
    SAMPLE_RATE,
    VERSION,
    WINDOW,
)


def build_manifest(work: Path, quality: dict[str, Any], *, synthesizers: dict[str, str]) -> ModelManifest:
    """Describe the files built into ``work`` (hashed here, so call it after they are all written)."""
    waveform = TensorSpec(name=INPUT, datatype="FP32", shape=(-1, CLIP_SAMPLES))
    probabilities = TensorSpec(name=OUTPUT, datatype="FP32", shape=(-1, len(LABELS)))
    return ModelManifest(
        name=NAME,
        version=VERSION,
        domain="speech",
        validation="samples.json",  # run by every serving process before this version takes traffic
        task="keyword-spotting",
        description=(
            "English spoken commands (zero to nine, yes, no, up, down, left, right, on, off, stop, go, plus "
            "_unknown_ and _silence_): a log-mel front end and a 1-D CNN in one graph, over 1-second windows "
            "of 16 kHz audio. A keyword spotter, not open-vocabulary speech recognition."
        ),
        source=(
            "trained from scratch by models/speech/commands/build.py on speech synthesized with "
            f"{synthesizers['espeak-ng']} and {synthesizers['festival']}, measured on speech of a synthesizer "
            f"held out of training ({synthesizers['flite']}); no pretrained weights"
        ),
        license="Apache-2.0",
        files=(file_entry(work, "model.onnx"), file_entry(work, "samples.json")),
        engine=EngineSpec(file="model.onnx", inputs=(waveform,), outputs=(probabilities,)),
        inputs=(waveform,),
        outputs=(probabilities,),
        preprocessing={
            "sample_rate": SAMPLE_RATE,
            "clip_samples": CLIP_SAMPLES,
            "max_seconds": MAX_SECONDS,
            "features_in_graph": True,
            "features": {
                "kind": "log-mel, relative to the window's loudest bin",
                "window": WINDOW,
                "hop": HOP,
                "n_fft": N_FFT,
                "n_mels": N_MELS,
                "f_min": F_MIN,
                "f_max": F_MAX,
                "floor": FLOOR,
            },
            "segmentation": "energy-based word cutting, aimass_speech.words",
        },
        labels=LABELS,
        quality=quality,
        created_at=timestamp(),
    )
