"""Speech: 1-second 16 kHz waveforms in, spoken-command probabilities out. An item is one clip.

The graph takes the waveform itself (its log-mel front end is inside), so the floor has nothing to decode:
it feeds the clips as they are (the default floor). The clips are synthetic, reproducible voiced bursts:
the graph's cost does not depend on what is said. Samples carry 4 decimals, so that V2 JSON holds a clip in
about 130 kB (a batch of 32 stays under Lambda's 6 MB request limit) and carries exactly the float32
values fed to the raw engine. Besides V2 JSON, the binary tensor extension is measured: what an audio
client would send.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import numpy.typing as npt

from bench.workload import Array, Feeds, Request, Route, Workload

if TYPE_CHECKING:
    from aimass.serving.runtime import ModelRuntime
    from aimass.store.manifest import ModelManifest

Clip = npt.NDArray[np.float64]
SAMPLE_RATE = 16_000
BATCH = 32
# Recorded HTTP API (v2) events: only their envelope is used (path, body and content headers are replaced).
JSON_TEMPLATE = "apigw_http_v2_text_infer"
BINARY_TEMPLATE = "apigw_http_v2_text_infer_binary"


def clip(seed: int, samples: int = SAMPLE_RATE) -> Clip:
    """A voiced burst (a fundamental of 100-250 Hz and two harmonics under a Hann envelope) in faint noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / SAMPLE_RATE
    f0, length = rng.uniform(100, 250), int(rng.uniform(0.3, 0.6) * samples)
    start = int(rng.integers(0, samples - length))
    envelope = np.zeros(samples)
    envelope[start : start + length] = np.hanning(length)
    voice = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
    wave = 0.3 * envelope * voice + rng.normal(0, 0.005, samples)
    return np.asarray(np.round(np.clip(wave, -1, 1), 4), dtype=np.float64)


class _SpeechRuntime(Protocol):
    """What the bench reads of aimass_speech's runtime (the graph input it feeds)."""

    feed: str


def _binary_request(manifest: ModelManifest, clips: Sequence[Clip]) -> Request:
    """The V2 binary tensor extension: a JSON header, then the raw little-endian float32 samples."""
    spec = manifest.inputs[0]
    data = np.stack(clips).astype("<f4").tobytes()
    parameters = {"binary_data_size": len(data)}
    header = {
        "inputs": [
            {"name": spec.name, "shape": [len(clips), spec.shape[-1]], "datatype": "FP32", "parameters": parameters}
        ]
    }
    head = json.dumps(header).encode()
    return Request(
        f"/v2/models/{manifest.name}/infer",
        head + data,
        content_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(head))},
        binary=True,
    )


class SpeechWorkload(Workload[Clip]):
    domain = "speech"
    model = "speech-commands"  # the domain's ONNX model; sphinx-en-us is measured by its own evaluate.py
    noun = "clip"
    codec_label = "waveforms to FP32, finite check"
    v2_template = JSON_TEMPLATE

    def items(self) -> Sequence[Clip]:
        return [clip(seed) for seed in range(BATCH)]

    def v2_input(self, manifest: ModelManifest, items: Sequence[Clip]) -> dict[str, Any]:
        spec = manifest.inputs[0]
        data = np.stack(items).ravel().tolist()
        return {"name": spec.name, "shape": [len(items), spec.shape[-1]], "datatype": "FP32", "data": data}

    def v2_request(self, manifest: ModelManifest, items: Sequence[Clip]) -> Request:
        body = json.dumps({"inputs": [self.v2_input(manifest, items)]}, separators=(",", ":")).encode()
        return Request(f"/v2/models/{manifest.name}/infer", body)

    def predict_inputs(self, manifest: ModelManifest, items: Sequence[Clip]) -> dict[str, Array]:
        return {manifest.inputs[0].name: np.stack(items).astype(np.float32)}

    def engine_feeds(self, runtime: ModelRuntime, items: Sequence[Clip]) -> Feeds:
        """As the runtime's V2 path makes them: FP32, checked finite."""
        speech = cast(_SpeechRuntime, runtime)
        waveforms = np.asarray(np.stack(items), dtype=np.float32)
        if not np.isfinite(waveforms).all():
            raise ValueError("a clip has NaN or infinite samples")
        return {speech.feed: waveforms}

    def routes(self) -> tuple[Route[Clip], ...]:
        return (Route("v2_binary", "V2 infer, binary tensor", BINARY_TEMPLATE, _binary_request, self.v2_agrees),)

    def describe(self, runtime: ModelRuntime, item: Clip) -> dict[str, Any]:
        return {
            "clip": f"synthetic voiced burst, {len(item) / SAMPLE_RATE:g} s at {SAMPLE_RATE} Hz",
            "clip_samples": len(item),
        }


WORKLOAD = SpeechWorkload()
