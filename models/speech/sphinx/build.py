"""Build sphinx-en-us, open-vocabulary English transcription with CMU PocketSphinx, into the model store.

    python models/speech/sphinx/build.py [--store model_store] [--force]

Nothing is trained or downloaded: the PyPI wheel ``pocketsphinx`` ships CMU Sphinx's US English acoustic
model, a 3-gram language model and the CMU pronouncing dictionary. The build copies them, unchanged, with the
wheel's licence into ``<store>/sphinx-en-us/1/``, loads them through the server's own runtime, has flite
(Debian package ``flite``) speak the validation sentence, and fails unless the runtime hears it word for
word; the samples record that waveform and its transcript. The quality in the manifest is the one measured
through the API by ``evaluate.py`` beside this file (``quality.json``), refused if it was measured on other
files than these. A store that is already up to date is detected without importing pocketsphinx.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Run as a script or loaded by file path: put the repository root on the import path (see models/README.md).
_REPO = Path(__file__).resolve().parents[3]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from models.buildkit import BuildError, build_steps, console, publish, run_cli, seal  # noqa: E402
from models.speech.sphinx.spec import (  # noqa: E402
    FILES,
    LICENSE_FILE,
    NAME,
    SAMPLE_TEXT,
    SAMPLE_VOICE,
    SAMPLES_FILE,
    VERSION,
)

QUALITY_FILE = Path(__file__).resolve().parent / "quality.json"


def build(store: Path, *, force: bool = False) -> Path:
    """Build the model into ``store`` unless it is already there; return the version directory."""
    return publish(store, NAME, VERSION, _build_into, force=force)


def wheel_files() -> tuple[str, Path, Path]:
    """The installed pocketsphinx's version, its model folder and its licence file."""
    from importlib import metadata

    import pocketsphinx  # type: ignore[import-untyped]

    distribution = metadata.distribution("pocketsphinx")
    licence = next(
        (Path(str(distribution.locate_file(f))) for f in distribution.files or [] if f.name == "LICENSE"), None
    )
    if licence is None:
        raise BuildError("the pocketsphinx wheel ships no LICENSE file")
    return distribution.version, Path(pocketsphinx.get_model_path()), licence


def _build_into(work: Path) -> None:
    assemble(work)


def assemble(work: Path, *, measured: bool = True) -> None:
    """Every file of the version into ``work``; ``measured=False`` leaves out quality.json (evaluate.py's own
    build: the measurement is what it makes)."""
    with build_steps(total=3) as step:
        with step("copy the acoustic model, dictionary and language model"):
            version, model_folder, licence = wheel_files()
            for path, (source, _) in FILES.items():
                (work / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(model_folder / source, work / path)
            shutil.copyfile(licence, work / LICENSE_FILE)

        with step(f"transcribe the validation sentence (flite {SAMPLE_VOICE})"):
            quality = measured_quality(work) if measured else {}
            _write_samples(work, version)

        with step("write the manifest"):
            from models.speech.sphinx.manifest import build_manifest

            seal(work, build_manifest(work, quality, pocketsphinx=version))
    console.print(f"  word error rate: {quality.get('summary', 'not measured')}")


def _write_samples(work: Path, version: str) -> None:
    """The sentence as flite speaks it, 16 kHz, and the transcript this runtime gives it (which must be right)."""
    from models.speech.sphinx.voices import Voice, speak

    runtime = served_runtime(work, version)
    samples = waveform(speak(Voice("flite", SAMPLE_VOICE), SAMPLE_TEXT))
    text = check_transcript(runtime, samples, SAMPLE_TEXT)
    # str() of a float32 is its shortest exact form (as models.buildkit.write_samples writes numbers).
    document = {"inputs": {"waveform": [[float(str(v)) for v in samples]]}, "outputs": {"text": [text]}}
    (work / SAMPLES_FILE).write_text(json.dumps(document) + "\n")


def check_transcript(runtime: Any, samples: Any, expected: str) -> str:
    """The build's gate on the served model: the runtime must hear ``samples`` (16 kHz float32) as ``expected``,
    word for word; returns the transcript."""
    (text,) = runtime.predict({"waveform": samples[None, :]}).outputs["text"].tolist()
    if text != expected:
        raise BuildError(f"the runtime heard {text!r} in flite's {expected!r}")
    return str(text)


def waveform(wav: bytes) -> Any:
    """A WAV file as the server hears it: decoded, mono, 16 kHz float32."""
    from aimass.serving.domains import checkout_domains

    checkout_domains()
    from aimass_speech.audio import decode, resample
    from models.speech.sphinx.spec import SAMPLE_RATE

    samples, rate = decode(wav, max_seconds=60)
    return resample(samples, rate, SAMPLE_RATE)


def served_runtime(work: Path, version: str) -> Any:
    """The server's runtime over the files just copied, with a provisional manifest (no samples yet)."""
    from aimass.serving.domains import runtime_class
    from aimass.serving.session import SessionFactory
    from aimass.settings import Settings
    from aimass.store.base import ModelArtifact
    from models.speech.sphinx.manifest import build_manifest

    (work / SAMPLES_FILE).write_text("{}\n")  # listed in the manifest; rewritten once the transcript is known
    manifest = build_manifest(work, {}, pocketsphinx=version)
    runtime = runtime_class("speech", "pocketsphinx")(ModelArtifact(manifest, work), SessionFactory(Settings()))
    runtime.load()
    return runtime


def measured_quality(work: Path) -> dict[str, Any]:
    """evaluate.py's measurement, refused unless it was made on exactly these files."""
    from aimass.store.manifest import sha256_file

    if not QUALITY_FILE.is_file():
        raise BuildError(f"{QUALITY_FILE.name} is missing: run python models/speech/sphinx/evaluate.py")
    quality: dict[str, Any] = json.loads(QUALITY_FILE.read_text())
    files = {path: sha256_file(work / path) for path in FILES}
    if quality.get("files") != files:
        raise BuildError(
            f"{QUALITY_FILE.name} was measured on other model files: run python models/speech/sphinx/evaluate.py"
        )
    del quality["files"]
    return quality


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
