"""Build the speech-commands keyword spotter into the model store, training it from synthesized speech.

    python models/speech/commands/build.py [--store model_store] [--force]

No speech model or data set is downloaded. Two synthesizers (Debian packages installed by
``scripts/system-packages.sh``) speak the vocabulary: espeak-ng in 84 training speakers x 7 accents, and
festival in its 12 voices (three English, nine reading English respelled in Czech, Italian, Finnish and
Catalan), at random rates and pitches. The clips are augmented (an LPC vocoder, speed, reverberation,
noise, gain, shift), cut into 1-second windows by the server's own word cutter, and a small CNN is trained
on their log-mel spectrograms with PyTorch, the features augmented batch by batch (vocal-tract warp, tempo,
blur, equalisation, masks). The graph (log-mel front end + CNN + softmax) is exported to ONNX and measured
on 16 espeak-ng speakers it never heard, in every accent including one never heard either, and on a third
synthesizer, flite, held out of training altogether, word by word and in command sequences through the
transcribe task; the build fails below ``MIN_ACCURACY`` and ``MIN_SYNTHESIZER_ACCURACY``. It writes
``<store>/speech-commands/2/`` with ``model.onnx``, ``samples.json`` and ``manifest.json``.

``make serve`` and the tests call ``build()`` on every run, so a store that is already up to date is
detected without importing torch. This file is the order of the steps; the parts are beside it (``spec``,
``synth``, ``festival``, ``flite``, ``accents``, ``data``, ``vocoder``, ``features``, ``feature_augment``,
``train``, ``export``, ``quality``, ``manifest``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Run as a script or loaded by file path: put the repository root on the import path (see models/README.md).
_REPO = Path(__file__).resolve().parents[3]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from models.buildkit import build_steps, console, publish, release, run_cli, seal, sig  # noqa: E402
from models.speech.commands.spec import (  # noqa: E402
    LABELS,
    NAME,
    SEED,
    SILENCE,
    TARGET_ACCURACY,
    TARGET_SYNTHESIZER_ACCURACY,
    VERSION,
)

AUGMENTED_COPIES = 2
VOCODED = 0.3  # share of the training copies passed through the LPC vocoder (vocoder.py)
SILENCE_CLIPS = 1000
TEST_SILENCE_CLIPS = 200
THREADS = 2  # fixed, so that a build on a bigger machine trains the same model
# Synthesized audio, kept between builds under a hash of what was asked of which synthesizer versions.
CACHE = _REPO / ".cache" / "speech-commands"


def build(store: Path, *, force: bool = False) -> Path:
    """Build the model into ``store`` unless it is already there; return the version directory."""
    return publish(store, NAME, VERSION, _build_into, force=force)


def _build_into(work: Path) -> None:
    """Build every file of the version into ``work``; raise BuildError if a check fails."""
    started = time.perf_counter()
    with build_steps(total=7) as step:
        with step("synthesize speech with espeak-ng, festival and flite"):
            # OpenMP threads that spin while they wait turn a busy machine's two cores into a crawl (20x slower
            # training beside one other busy process); sleeping costs little on an idle one. Read when torch
            # first loads, so it only takes effect if nothing in this process has imported torch yet.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            # MKL may use fewer threads than asked for when the machine is busy, which changes the order of its
            # sums and so the trained weights: a fixed count keeps a rebuild byte-identical under any load.
            os.environ.setdefault("MKL_DYNAMIC", "FALSE")
            import numpy as np
            import torch

            from models.speech.commands import data

            torch.set_num_threads(THREADS)
            rng = np.random.default_rng(SEED)
            synthesizers = _synthesizer_versions()
            train_recordings = data.synthesize(data.train_plan(rng), CACHE)
            tests = data.held_out_sets(SEED, TEST_SILENCE_CLIPS, CACHE)

        with step("augment and cut 1-second windows"):
            train_set = data.concat(
                data.augmented_clips(train_recordings, AUGMENTED_COPIES, rng, vocoded=VOCODED),
                data.silence_clips(SILENCE_CLIPS, rng),
            )

        with step("log-mel features"):
            from models.speech.commands.features import fast_log_mel, log_mel_module

            with torch.no_grad():
                windows = torch.from_numpy(train_set.windows)
                features = torch.cat([fast_log_mel(windows[i : i + 1024]) for i in range(0, len(windows), 1024)])

        with step("train the CNN"):
            from models.speech.commands.train import train

            classifier, training = train(features, train_set.labels, seed=SEED)

        with step("export to ONNX and verify"):
            from models.speech.commands.export import export_onnx, served_module, verify_graph

            module = served_module(log_mel_module(), classifier)
            exporter = export_onnx(module, work / "model.onnx")
            _, drift = verify_graph(work / "model.onnx", module)

        with step("measure on held-out speakers"):
            from models.speech.commands import quality as measure

            runtime = _served_runtime(work, synthesizers)
            quality: dict[str, Any] = measure.measure(runtime, tests, SEED)
            measure.check_minimums(quality)
            quality |= {
                "target_accuracy": TARGET_ACCURACY,
                "target_synthesizer_accuracy": TARGET_SYNTHESIZER_ACCURACY,
                "train": {
                    "clips": len(train_set.labels),
                    "recordings": len(train_recordings),
                    **{k: sig(v) for k, v in training.items()},
                },
                "onnx_vs_pytorch_max_abs": sig(drift),
                "export": exporter,
                "trained_with": f"PyTorch {release(torch.__version__)}, {THREADS} threads, seed {SEED}",
                "previous_version": measure.previous_quality(),
            }

        with step("write samples and manifest"):
            from models.speech.commands.manifest import build_manifest

            _write_samples(work, runtime, tests.held_out)
            quality["build_seconds"] = round(time.perf_counter() - started)
            seal(work, build_manifest(work, quality, synthesizers=synthesizers))

    from models.speech.commands.quality import print_quality

    print_quality(quality)
    if quality["held_out"]["accuracy"] < TARGET_ACCURACY:
        console.print(f"[yellow]held-out accuracy is below the {TARGET_ACCURACY} target")
    if quality["held_out_synthesizer"]["accuracy"] < TARGET_SYNTHESIZER_ACCURACY:
        console.print(f"[yellow]held-out synthesizer accuracy is below the {TARGET_SYNTHESIZER_ACCURACY} target")


def _synthesizer_versions() -> dict[str, str]:
    """Each synthesizer's name and version, as the manifest's ``source`` names them."""
    import re

    from models.speech.commands.festival import festival_version
    from models.speech.commands.flite import flite_version
    from models.speech.commands.synth import espeak_version

    def named(name: str, line: str) -> str:
        found = re.search(r"\d+(\.\d+)+", line)
        return f"{name} {found.group()}" if found else line

    lines = {"espeak-ng": espeak_version(), "festival": festival_version(), "flite": flite_version()}
    return {name: named(name, line) for name, line in lines.items()}


def _served_runtime(work: Path, synthesizers: dict[str, str]) -> Any:
    """The server's runtime over the graph just built, with a provisional manifest (no quality yet)."""
    from aimass.serving.session import SessionFactory
    from aimass.settings import Settings
    from aimass.store.base import ModelArtifact
    from aimass_speech.runtime import SpeechCommandsRuntime
    from models.speech.commands.manifest import build_manifest

    (work / "samples.json").write_text("{}\n")  # listed in the manifest; rewritten by the last step
    artifact = ModelArtifact(build_manifest(work, {}, synthesizers=synthesizers), work)
    runtime = SpeechCommandsRuntime(artifact, SessionFactory(Settings(intra_op_threads=THREADS)))
    runtime.load()
    return runtime


def _write_samples(work: Path, runtime: Any, clips: Any) -> None:
    """One keyword, one other word and one silence window with the probabilities the graph gives them."""
    import numpy as np

    from models.buildkit import write_samples

    picks = [int(np.flatnonzero(clips.labels == LABELS.index(label))[0]) for label in ("stop", "_unknown_", SILENCE)]
    windows = clips.windows[picks]
    probabilities = runtime.predict({"waveform": windows}).outputs["probabilities"]
    write_samples(
        work / "samples.json",
        inputs={"waveform": [[float(str(v)) for v in row] for row in windows]},
        outputs={"probabilities": probabilities},
        tolerance={"probabilities": 1e-4},
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
