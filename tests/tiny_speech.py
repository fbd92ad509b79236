"""A tiny speech model with the real one's served signature, and audio files of every kind to feed it.

The graph hears tones: it projects each 1-second window onto 300, 1000 and 3000 Hz and calls them "down",
"stop" and "up"; broadband sound is ``_unknown_`` and a quiet window ``_silence_``. That is enough to drive
every path of the speech domain (decoding, resampling, word cutting, V2, the transcribe task) through real
ONNX Runtime, with answers a test can predict.
"""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from aimass.store.manifest import EngineSpec, ModelManifest, TensorSpec, file_entry, write_manifest

TINY_SPEECH = "tiny-speech"
RATE = 16000
CLIP = 16000
TONES = {"down": 300.0, "stop": 1000.0, "up": 3000.0}
LABELS = (*TONES, "_unknown_", "_silence_")
BROADBAND = 50.0  # window energy x this competes with the tones' power: noise is _unknown_, a tone is not
QUIET = 1e-3  # the _silence_ score: a window whose tone power and energy are below it is silence
Samples = npt.NDArray[np.float32]


def _basis() -> npt.NDArray[np.float32]:
    times = np.arange(CLIP) / RATE
    columns = [f(2 * np.pi * hz * times) for hz in TONES.values() for f in (np.cos, np.sin)]
    return np.stack(columns, axis=1).astype(np.float32)  # [CLIP, 2 * tones]


def _graph(path: Path) -> None:
    tones = len(TONES)
    nodes = [
        helper.make_node("MatMul", ["waveform", "basis"], ["projections"]),
        helper.make_node("Mul", ["projections", "projections"], ["squares"]),
        helper.make_node("Reshape", ["squares", "pairs"], ["paired"]),
        helper.make_node("ReduceSum", ["paired", "axis2"], ["power"], keepdims=0),
        helper.make_node("ReduceSumSquare", ["waveform"], ["energy"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["energy", "broadband"], ["unknown"]),
        helper.make_node("Mul", ["energy", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "quiet"], ["silence"]),
        helper.make_node("Concat", ["power", "unknown", "silence"], ["scores"], axis=1),
        helper.make_node("ReduceSum", ["scores", "axis1"], ["total"], keepdims=1),
        helper.make_node("Div", ["scores", "total"], ["probabilities"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_speech",
        [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["batch", CLIP])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(LABELS)])],
        initializer=[
            numpy_helper.from_array(_basis(), "basis"),
            numpy_helper.from_array(np.array([-1, tones, 2], dtype=np.int64), "pairs"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
            numpy_helper.from_array(np.array([BROADBAND], dtype=np.float32), "broadband"),
            numpy_helper.from_array(np.array([0.0], dtype=np.float32), "zero"),
            numpy_helper.from_array(np.array([QUIET], dtype=np.float32), "quiet"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def build_tiny_speech(store: Path, name: str = TINY_SPEECH, version: str = "1", max_seconds: float = 10.0) -> Path:
    directory = store / name / version
    directory.mkdir(parents=True)
    _graph(directory / "model.onnx")
    waveform = TensorSpec(name="waveform", datatype="FP32", shape=(-1, CLIP))
    probabilities = TensorSpec(name="probabilities", datatype="FP32", shape=(-1, len(LABELS)))
    manifest = ModelManifest(
        name=name,
        version=version,
        domain="speech",
        task="keyword-spotting",
        description="tiny tone-spotting model for tests",
        files=(file_entry(directory, "model.onnx"),),
        engine=EngineSpec(file="model.onnx", inputs=(waveform,), outputs=(probabilities,)),
        inputs=(waveform,),
        outputs=(probabilities,),
        preprocessing={"sample_rate": RATE, "clip_samples": CLIP, "max_seconds": max_seconds},
        labels=LABELS,
        created_at="2026-11-28T00:00:00Z",
    )
    write_manifest(directory, manifest)
    return directory


def reference_probabilities(windows: Samples) -> npt.NDArray[np.float64]:
    """What the tiny model must answer, computed without ONNX Runtime."""
    projections = windows.astype(np.float64) @ _basis().astype(np.float64)
    power = (projections**2).reshape(len(windows), len(TONES), 2).sum(axis=2)
    energy = (windows.astype(np.float64) ** 2).sum(axis=1, keepdims=True)
    scores = np.concatenate([power, BROADBAND * energy, np.full_like(energy, QUIET)], axis=1)
    return np.asarray(scores / scores.sum(axis=1, keepdims=True))


# ---------------------------------------------------------------------------------------------------------
# Audio to send it.


def tone(word: str, seconds: float = 0.4, rate: int = RATE, amplitude: float = 0.5) -> Samples:
    """The tone the tiny model hears as ``word``, with 10 ms ramps so that it starts and ends cleanly."""
    times = np.arange(round(seconds * rate)) / rate
    sound = amplitude * np.sin(2 * np.pi * TONES[word] * times)
    ramp = min(len(times) // 2, round(0.01 * rate))
    envelope = np.ones(len(times))
    envelope[:ramp] = envelope[len(times) - ramp :][::-1] = np.linspace(0, 1, ramp)
    return (sound * envelope).astype(np.float32)


def utterance(words: list[str], rate: int = RATE, pause: float = 0.35, edge: float = 0.25) -> Samples:
    """Tones separated by pauses of silence, as the tiny model's 'commands'."""
    silence = np.zeros(round(pause * rate), dtype=np.float32)
    parts = [np.zeros(round(edge * rate), np.float32)]
    for word in words:
        parts += [tone(word, rate=rate), silence]
    parts[-1] = np.zeros(round(edge * rate), np.float32)
    return np.concatenate(parts)


def pcm_wav(samples: Samples, rate: int = RATE, bits: int = 16, channels: int = 1) -> bytes:
    """A PCM WAV written by the standard library (``channels`` copies of the signal)."""
    scaled = np.clip(samples, -1.0, 1.0 - 2.0 ** (1 - bits))
    if bits == 8:
        raw = (np.round(scaled * 128) + 128).astype(np.uint8).tobytes()
        frames = np.frombuffer(raw, np.uint8).repeat(channels).tobytes()
    else:
        ints = np.round(scaled * 2.0 ** (bits - 1)).astype(np.int64).repeat(channels)
        frames = (
            b"".join(int(v).to_bytes(bits // 8, "little", signed=True) for v in ints)
            if bits == 24
            else (ints.astype({16: "<i2", 32: "<i4"}[bits]).tobytes())
        )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(bits // 8)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


def float_wav(
    samples: Samples, rate: int = RATE, *, bits: int = 32, extensible: bool = False, channels: int = 1
) -> bytes:
    """An IEEE-float WAV (format 3, or WAVE_FORMAT_EXTENSIBLE with the float sub-format), which ``wave`` refuses."""
    data = samples.astype({32: "<f4", 64: "<f8"}[bits]).repeat(channels).tobytes()
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else 3, channels, rate, rate * align, align, bits)
    if extensible:  # cbSize, valid bits, channel mask, then the sub-format GUID (format 3 + the standard suffix)
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", 3) + bytes.fromhex("000000001000800000aa00389b71")
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def encoded(samples: Samples, kind: str, rate: int = RATE) -> bytes:
    """FLAC, OGG (Vorbis) or MP3 through libsndfile."""
    import soundfile  # type: ignore[import-untyped]

    buffer = io.BytesIO()
    subtype = {"FLAC": "PCM_16", "OGG": "VORBIS", "MP3": "MPEG_LAYER_III"}[kind]
    soundfile.write(buffer, samples, rate, format=kind, subtype=subtype)
    return buffer.getvalue()
