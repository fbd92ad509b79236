"""Audio decoding and resampling (aimass_speech.audio): every WAV flavour, FLAC and OGG, and what is refused."""

from __future__ import annotations

import io
import logging
import wave

import numpy as np
import pytest
import soundfile  # type: ignore[import-untyped]

from aimass.errors import InvalidInput, PayloadTooLarge
from aimass.serving.domains import checkout_domains
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


def test_audio_over_the_duration_limit_is_a_413_before_it_is_decoded() -> None:
    with pytest.raises(PayloadTooLarge, match=r"'file' holds 2 seconds of audio, over the per-request limit of 1\.5 "):
        decode(pcm_wav(np.zeros(32000, np.float32)), max_seconds=1.5)
    with pytest.raises(PayloadTooLarge, match=r"limit of 1\.5 seconds of audio; split the audio into shorter files"):
        decode(encoded(np.zeros(32000, np.float32), "FLAC"), max_seconds=1.5)


def test_compressed_audio_is_read_no_further_than_its_header_says(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a FLAC of 1 s, and libsndfile's reads watched
    reads: list[int] = []
    read = soundfile.SoundFile.read

    def counted(self: soundfile.SoundFile, frames: int = -1, *args: object, **kwargs: object) -> object:
        reads.append(frames)
        return read(self, frames, *args, **kwargs)

    monkeypatch.setattr(soundfile.SoundFile, "read", counted)
    # WHEN it is decoded
    samples, _ = decode(encoded(SIGNAL, "FLAC"), max_seconds=10)
    # THEN it was read in blocks that add up to the frames its header gives, no "read to the end"
    assert len(samples) == len(SIGNAL) and sum(reads) == len(SIGNAL) and -1 not in reads


def test_a_flac_that_does_not_give_its_length_is_refused_before_it_is_decoded() -> None:
    # A streaming encoder leaves STREAMINFO's 36-bit total samples (the end of its bytes 10-17) at 0: unknown.
    flac = bytearray(encoded(np.zeros(16000, np.float32), "FLAC"))
    info = 8  # after "fLaC" and the metadata block header
    packed = int.from_bytes(flac[info + 10 : info + 18], "big") & ~((1 << 36) - 1)
    flac[info + 10 : info + 18] = packed.to_bytes(8, "big")
    with pytest.raises(InvalidInput, match="'file' is FLAC whose header does not give its length; expected one"):
        decode(bytes(flac), max_seconds=10)


def test_many_channels_are_refused_from_the_header() -> None:
    # 255 channels of silent Vorbis: 5 kB a second that would decode to 100 MB a second of float64 samples
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros((16000, 255), np.float32), 16000, format="OGG", subtype="VORBIS")
    with pytest.raises(InvalidInput, match="'file' has 255 channels; expected 1 to 8"):
        decode(buffer.getvalue(), max_seconds=10)
    with pytest.raises(InvalidInput, match="'file' has 9 channels; expected 1 to 8"):
        decode(float_wav(np.zeros(100, np.float32), channels=9), max_seconds=10)


@pytest.mark.parametrize("kind", ["FLAC", "OGG", "MP3"])
def test_an_undecodable_file_gets_a_reason_without_a_repr(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    magic = {"FLAC": b"fLaC", "OGG": b"OggS", "MP3": b"ID3"}[kind]
    with caplog.at_level(logging.INFO, logger="aimass_speech.audio"), pytest.raises(InvalidInput) as raised:
        decode(magic + bytes(60), max_seconds=10)
    message = raised.value.message
    assert message.startswith(f"'file' looks like {kind} but cannot be decoded")
    assert message.endswith(f"; expected a complete, undamaged {kind} file")
    assert "BytesIO" not in message and " at 0x" not in message and "<" not in message
    assert "BytesIO" in caplog.text  # libsndfile's own words go to the log


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
