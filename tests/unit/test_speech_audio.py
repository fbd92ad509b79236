"""Audio decoding and resampling (aimass_speech.audio): every WAV flavour, FLAC and OGG, and what is refused."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
import soundfile  # type: ignore[import-untyped]

from aimass.domains import checkout_domains
from aimass.errors import InvalidInput
from tests.tiny_speech import encoded, float_wav, pcm_wav, tone

checkout_domains()
from aimass_speech.audio import decode, resample  # noqa: E402

SIGNAL = tone("up", seconds=0.25) * 1.6  # peaks at 0.8


@pytest.mark.parametrize(("bits", "tolerance"), [(8, 1 / 64), (16, 1e-4), (24, 1e-6), (32, 1e-8)])
def test_pcm_wav_of_every_width_decodes_to_the_signal(bits: int, tolerance: float) -> None:
    samples, rate = decode(pcm_wav(SIGNAL, bits=bits), max_seconds=10)
    assert rate == 16000 and samples.dtype == np.float32
    np.testing.assert_allclose(samples, SIGNAL, atol=tolerance)


@pytest.mark.parametrize("extensible", [False, True])
@pytest.mark.parametrize("bits", [32, 64])
def test_float_wav_decodes_exactly(bits: int, extensible: bool) -> None:
    samples, _ = decode(float_wav(SIGNAL, bits=bits, extensible=extensible), max_seconds=10)
    np.testing.assert_array_equal(samples, SIGNAL)


def test_channels_are_averaged_to_mono() -> None:
    same, _ = decode(float_wav(SIGNAL, channels=2), max_seconds=10)
    np.testing.assert_array_equal(same, SIGNAL)
    # Left: the signal, right: silence.
    frames = np.round(np.stack([SIGNAL, np.zeros_like(SIGNAL)], axis=1) * 32767).astype("<i2").tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(frames)
    half, _ = decode(buffer.getvalue(), max_seconds=10)
    np.testing.assert_allclose(half, SIGNAL / 2, atol=1e-4)


def test_streamed_wav_with_an_unknown_length_decodes_to_its_end() -> None:
    # Writers that stream to a pipe (espeak-ng --stdout, ffmpeg) cannot go back to fill in the data size.
    wav = bytearray(pcm_wav(SIGNAL))
    data = wav.index(b"data")
    wav[data + 4 : data + 8] = b"\xff\xff\xff\xff"
    samples, _ = decode(bytes(wav), max_seconds=10)
    np.testing.assert_allclose(samples, SIGNAL, atol=1e-4)


@pytest.mark.parametrize(("kind", "tolerance"), [("FLAC", 1e-4), ("OGG", 0.05), ("MP3", 0.05)])
def test_flac_ogg_and_mp3_decode_through_libsndfile(kind: str, tolerance: float) -> None:
    samples, rate = decode(encoded(SIGNAL, kind), max_seconds=10)
    assert rate == 16000
    # Vorbis and MP3 are lossy (and MP3 pads the start): compare the loudness and the length.
    assert abs(float(np.sqrt(np.mean(samples**2))) - float(np.sqrt(np.mean(SIGNAL**2)))) < tolerance
    assert len(samples) == pytest.approx(len(SIGNAL), abs=2000 if kind == "MP3" else 0)


def test_ogg_opus_decodes_at_its_own_rate() -> None:
    buffer = io.BytesIO()
    soundfile.write(buffer, tone("stop", seconds=0.5, rate=48000), 48000, format="OGG", subtype="OPUS")
    samples, rate = decode(buffer.getvalue(), max_seconds=10)
    assert rate == 48000 and len(samples) == 24000


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "is not a WAV, FLAC, OGG or MP3 file"),
        (b"hello, world: not audio at all", "is not a WAV, FLAC, OGG or MP3 file"),
        (b"RIFF\x00\x00\x00\x00WAVE", "without a valid 'fmt ' and 'data' chunk"),
        (b"fLaC" + b"\x00" * 40, "looks like FLAC but cannot be decoded"),
        (b"OggS" + b"\x00" * 40, "looks like OGG but cannot be decoded"),
        (b"\xff\xfb\x90\x00" + b"\x00" * 40, "looks like MP3 but cannot be decoded"),
    ],
)
def test_what_is_not_audio_is_refused_naming_the_problem(data: bytes, expected: str) -> None:
    with pytest.raises(InvalidInput, match=expected) as raised:
        decode(data, max_seconds=10)
    assert raised.value.param == "file"


def test_unsupported_wav_sample_formats_are_refused() -> None:
    wav = bytearray(pcm_wav(SIGNAL))
    wav[20:22] = (2).to_bytes(2, "little")  # format 2: Microsoft ADPCM
    with pytest.raises(InvalidInput, match="format 2 with 16-bit samples and 1 channels; expected 8/16/24/32-bit PCM"):
        decode(bytes(wav), max_seconds=10)


def test_an_empty_wav_is_refused() -> None:
    with pytest.raises(InvalidInput, match="holds no audio samples"):
        decode(pcm_wav(np.zeros(0, np.float32)), max_seconds=10)


def test_non_finite_float_samples_are_refused() -> None:
    broken = SIGNAL.copy()
    broken[10] = np.nan
    with pytest.raises(InvalidInput, match="NaN or infinite"):
        decode(float_wav(broken), max_seconds=10)


def test_audio_over_the_duration_limit_is_refused_before_it_is_decoded() -> None:
    with pytest.raises(InvalidInput, match=r"is 2\.0 s long; at most 1\.5 s of audio is accepted"):
        decode(pcm_wav(np.zeros(32000, np.float32)), max_seconds=1.5)
    with pytest.raises(InvalidInput, match=r"at most 1\.5 s"):
        decode(encoded(np.zeros(32000, np.float32), "FLAC"), max_seconds=1.5)


def test_sample_rates_out_of_range_are_refused() -> None:
    with pytest.raises(InvalidInput, match="sample rate of 1000 Hz; expected 4000 to 192000 Hz"):
        decode(pcm_wav(SIGNAL, rate=1000), max_seconds=10)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampling_keeps_the_pitch_and_the_duration(rate: int) -> None:
    source = tone("stop", seconds=0.5, rate=rate)
    resampled = resample(source, rate, 16000)
    assert len(resampled) == 8000 and resampled.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(resampled))
    assert np.argmax(spectrum) * 16000 / len(resampled) == pytest.approx(1000, abs=2)
    np.testing.assert_allclose(resampled, tone("stop", seconds=0.5), atol=0.01)


def test_resampling_to_the_same_rate_is_the_identity() -> None:
    assert resample(SIGNAL, 16000, 16000) is SIGNAL
