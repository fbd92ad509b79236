"""What this model is: the files it takes from the pocketsphinx wheel, where they go, and what PocketSphinx
calls each one; the sample that every deployment must transcribe as the build did."""

from __future__ import annotations

NAME = "sphinx-en-us"
VERSION = "1"

# Served audio: 16 kHz mono, what the acoustic model was trained on; a synchronous request holds at most 30 s,
# decoded whole; a batch's recording up to 30 minutes, decoded in pieces of at most 30 s cut at its pauses.
SAMPLE_RATE = 16000
MAX_SECONDS = 30.0
MAX_BATCH_SECONDS = 1800.0

# The pocketsphinx wheel's model folder (pocketsphinx.get_model_path()) holds en-us/: the acoustic model
# folder en-us/en-us/, the 3-gram language model and the pronouncing dictionary. Each file's path in the
# version, its path in the wheel's model folder, and PocketSphinx's configuration key for it (None: shipped
# for the reader, not read by the engine).
LANGUAGE_MODEL = "en-us.lm.bin"
FILES: dict[str, tuple[str, str | None]] = {
    "acoustic/mdef": ("en-us/en-us/mdef", "mdef"),
    "acoustic/means": ("en-us/en-us/means", "mean"),
    "acoustic/variances": ("en-us/en-us/variances", "var"),
    "acoustic/transition_matrices": ("en-us/en-us/transition_matrices", "tmat"),
    "acoustic/sendump": ("en-us/en-us/sendump", "sendump"),
    "acoustic/noisedict": ("en-us/en-us/noisedict", "fdict"),
    "acoustic/feat.params": ("en-us/en-us/feat.params", "featparams"),
    "acoustic/README": ("en-us/en-us/README", None),  # the acoustic model's own licence (Alpha Cephei, BSD)
    "cmudict-en-us.dict": ("en-us/cmudict-en-us.dict", "dict"),
    LANGUAGE_MODEL: ("en-us/en-us.lm.bin", None),  # engine.file
}
LICENSE_FILE = "LICENSE"  # the wheel's licence (CMU, BSD-style), shipped beside the model
SAMPLES_FILE = "samples.json"

# The validation sample: a sentence spoken by flite's kal16 voice, which the build must hear word for word.
SAMPLE_TEXT = "go forward ten meters"
SAMPLE_VOICE = "kal16"
