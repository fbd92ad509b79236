"""Audio files in, mono float32 samples at the model's rate out: the decoding every request goes through.

WAV is parsed here with numpy (8/16/24/32-bit PCM, 32/64-bit float, WAVE_FORMAT_EXTENSIBLE, any channel
count); FLAC, OGG (Vorbis, Opus) and MP3 go to libsndfile through ``soundfile``, imported on first use so
that WAV requests never load it. The model build resamples its synthesized speech with ``resample`` too.

What decoding costs is bounded before it starts: a file's length (``max_seconds``, a 413 over it), its
channels (MAX_CHANNELS) and its samples (MAX_SAMPLES, what a long file at a high rate would hold in
memory) are read from its header, and libsndfile reads no further than that length. A file whose header
does not give its length (a FLAC streamed to a pipe) is refused. Compressed channels are mixed down to
mono block by block as they are decoded: a few kilobytes of silent 255-channel Vorbis would otherwise
decode to gigabytes of samples. ``duration`` reads the length alone, with the same checks, before any
work is admitted.
"""

from __future__ import annotations

import io
import logging
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aimass.errors import InvalidInput
from aimass.serving.batching import check_budget

Samples = npt.NDArray[np.float32]

# (format tag, bits) -> how the samples are stored; 1 = PCM, 3 = IEEE float.
_WAV_SAMPLES = {(1, 8): "u1", (1, 16): "<i2", (1, 24): "i3", (1, 32): "<i4", (3, 32): "<f4", (3, 64): "<f8"}
_EXTENSIBLE = 0xFFFE
_MAGIC = {b"fLaC": "FLAC", b"OggS": "OGG", b"ID3": "MP3"}
MIN_RATE, MAX_RATE = 4000, 192000
# 7.1 surround. Decoding costs per sample of every channel, and functions/speech/function.toml sizes the
# longest file at this many.
MAX_CHANNELS = 8
# Samples (frames x channels) one file may hold, whatever its length: 30 s of the largest file a synchronous
# request takes (192 kHz, 8 channels). Longer recordings, which only a batch runs, are held to it too: an
# hour of 16 kHz mono is 57.6 million, 48 minutes fit.
MAX_SAMPLES = 30 * MAX_RATE * MAX_CHANNELS
_BLOCK = 1 << 16  # frames decoded at a time by libsndfile
_UNKNOWN_FRAMES = 1 << 62  # libsndfile's frame count for a file that does not say (SF_COUNT_MAX, 2**63 - 1)
log = logging.getLogger(__name__)


def decode(data: bytes, *, max_seconds: float, param: str = "file") -> tuple[Samples, int]:
    """Decode a WAV, FLAC, OGG or MP3 file to mono float32 samples in [-1, 1] and their sample rate."""
    kind = _kind(data, param)
    if kind == "WAV":
        samples, rate = _wav(data, max_seconds, param)
    else:
        samples, rate, _ = _libsndfile(data, kind, max_seconds, param)
    if samples.shape[0] == 0:
        raise InvalidInput(f"'{param}' holds no audio samples", param=param)
    if not np.isfinite(samples).all():
        raise InvalidInput(f"'{param}' has samples that are NaN or infinite", param=param)
    return np.asarray(samples.mean(axis=1), dtype=np.float32), rate


def duration(data: bytes, *, param: str = "file") -> float:
    """A WAV, FLAC, OGG or MP3 file's length in seconds, from its header alone, checked as ``decode`` checks it."""
    kind = _kind(data, param)
    if kind == "WAV":
        layout = _wav_layout(data, param)
        return layout.frames / layout.rate
    _, rate, frames = _libsndfile(data, kind, math.inf, param, read=False)
    return frames / rate


def _kind(data: bytes, param: str) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "WAV"
    kind = next((name for magic, name in _MAGIC.items() if data.startswith(magic)), None)
    if kind is None and len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:
        kind = "MP3"  # no ID3 tag: the file starts with an MPEG audio frame's sync bits
    if kind is None:
        raise InvalidInput(f"'{param}' is not a WAV, FLAC, OGG or MP3 file (it starts with {data[:12]!r})", param=param)
    return kind


def resample(samples: npt.NDArray[np.floating[Any]], rate: int, target: int) -> Samples:
    """Band-limited resampling by the FFT: the spectrum is cut (or zero-padded) at the new Nyquist frequency."""
    if rate == target:
        return np.asarray(samples, dtype=np.float32)
    # Zero-pad to a length that is a whole number of rate/gcd blocks and FFT-friendly (no large prime factor:
    # a prime-length FFT of 30 s at 192 kHz takes seconds), so that the output length is exact too.
    step = rate // math.gcd(rate, target)
    padded = step * _smooth(-(-len(samples) // step))
    count = padded * target // rate
    spectrum = np.fft.rfft(samples.astype(np.float64), padded)[: count // 2 + 1]
    out = np.fft.irfft(spectrum, count) * (count / padded)
    return np.asarray(out[: round(len(samples) * target / rate)], dtype=np.float32)


def _smooth(n: int) -> int:
    """The smallest 2^a * 3^b * 5^c >= n."""
    best, five = 1 << max(0, n - 1).bit_length(), 1
    while five < best:
        three = five
        while three < best:
            best = min(best, three << max(0, -(-n // three) - 1).bit_length())
            three *= 3
        five *= 5
    return best


@dataclass(frozen=True)
class _WavLayout:
    kind: str  # a _WAV_SAMPLES value
    channels: int
    rate: int
    frames: int
    pcm: bytes


def _wav(data: bytes, max_seconds: float, param: str) -> tuple[npt.NDArray[np.float64], int]:
    layout = _wav_layout(data, param)
    kind, channels, rate, frames, pcm = layout.kind, layout.channels, layout.rate, layout.frames, layout.pcm
    _check_duration(frames, rate, max_seconds, param)
    if kind == "i3":  # no numpy type: put each little-endian triple in the top of an int32, shift back down
        triples = np.frombuffer(pcm, dtype=np.uint8, count=frames * channels * 3).reshape(-1, 3).astype(np.int32)
        ints = (triples[:, 0] << 8 | triples[:, 1] << 16 | triples[:, 2] << 24) >> 8
    else:
        ints = np.frombuffer(pcm, dtype=kind, count=frames * channels)
    values = ints.astype(np.float64).reshape(frames, channels)
    scale = {"u1": 128.0, "<i2": 2.0**15, "i3": 2.0**23, "<i4": 2.0**31}.get(kind)
    if scale is not None:
        values = (values - 128.0 if kind == "u1" else values) / scale
    return values, rate


def _wav_layout(data: bytes, param: str) -> _WavLayout:
    chunks: dict[bytes, bytes] = {}
    offset = 12
    while offset + 8 <= len(data) and b"data" not in chunks:
        name, size = data[offset : offset + 4], int.from_bytes(data[offset + 4 : offset + 8], "little")
        # Streamed WAVs (a pipe, espeak-ng --stdout) claim a huge data size: the file's end is the data's end.
        chunks[name] = data[offset + 8 : offset + 8 + size]
        offset += 8 + size + (size & 1)
    fmt, pcm = chunks.get(b"fmt "), chunks.get(b"data")
    if fmt is None or len(fmt) < 16 or pcm is None:
        raise InvalidInput(f"'{param}' is a WAV file without a valid 'fmt ' and 'data' chunk", param=param)
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        tag = int.from_bytes(fmt[24:26], "little")  # the sub-format GUID starts with the plain format tag
    kind = _WAV_SAMPLES.get((tag, bits))
    if kind is None or channels == 0:
        raise InvalidInput(
            f"'{param}' is a WAV file of format {tag} with {bits}-bit samples and {channels} channels; expected "
            "8/16/24/32-bit PCM or 32/64-bit float with at least one channel",
            param=param,
        )
    _check_rate(rate, param)
    _check_channels(channels, param)
    frames = len(pcm) // (bits // 8 * channels)
    _check_samples(frames, channels, param)
    return _WavLayout(kind, channels, rate, frames, pcm)


def _libsndfile(
    data: bytes, kind: str, max_seconds: float, param: str, *, read: bool = True
) -> tuple[npt.NDArray[np.float64], int, int]:
    """The file's mono samples (none unless ``read``), its rate and its frames, as its header gives them."""
    import soundfile  # type: ignore[import-untyped]

    try:
        with soundfile.SoundFile(io.BytesIO(data)) as stream:
            rate, frames = int(stream.samplerate), int(stream.frames)
            _check_rate(rate, param)
            _check_channels(stream.channels, param)
            if frames >= _UNKNOWN_FRAMES:  # a FLAC written to a pipe: its length cannot be checked before
                raise InvalidInput(
                    f"'{param}' is {kind} whose header does not give its length; expected one that does "
                    "(re-encode it to a file rather than a stream)",
                    param=param,
                )
            _check_samples(frames, stream.channels, param)
            _check_duration(frames, rate, max_seconds, param)
            # libsndfile reads no further than the header's length
            mono = _mono(stream, frames) if read else np.zeros(0, dtype=np.float64)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        # The exception names the stream object, not the client's file: it goes to the log only.
        log.info("'%s' looks like %s but libsndfile cannot decode it: %s", param, kind, exc)
        reason = f" ({exc.error_string.rstrip('.')})" if isinstance(exc, soundfile.LibsndfileError) else ""
        raise InvalidInput(
            f"'{param}' looks like {kind} but cannot be decoded{reason}; expected a complete, undamaged {kind} file",
            param=param,
        ) from None
    return mono[:, np.newaxis], rate, frames


def _mono(stream: Any, frames: int) -> npt.NDArray[np.float64]:
    """Up to ``frames`` frames of an open ``soundfile.SoundFile``, each block's channels averaged as it comes."""
    blocks, count = [], 0
    while count < frames:
        block = stream.read(min(_BLOCK, frames - count), dtype="float64", always_2d=True)
        if not len(block):
            break
        blocks.append(block.mean(axis=1))
        count += len(block)
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float64)


def _check_rate(rate: int, param: str) -> None:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise InvalidInput(
            f"'{param}' has a sample rate of {rate} Hz; expected {MIN_RATE} to {MAX_RATE} Hz", param=param
        )


def _check_channels(channels: int, param: str) -> None:
    if not 1 <= channels <= MAX_CHANNELS:
        raise InvalidInput(f"'{param}' has {channels} channels; expected 1 to {MAX_CHANNELS}", param=param)


def _check_samples(frames: int, channels: int, param: str) -> None:
    advice = "send it as 16 kHz mono, or split it into shorter files"
    check_budget(frames * channels, MAX_SAMPLES, unit="samples (frames x channels)", param=param, advice=advice)


def _check_duration(frames: int, rate: int, max_seconds: float, param: str) -> None:
    # From the header, before decoding: a few kilobytes of compressed silence can hold hours.
    advice = "split the audio into shorter files, one request each"
    check_budget(frames / rate, max_seconds, unit="seconds of audio", param=param, advice=advice)
