"""A crude LPC vocoder, as augmentation: a word re-spoken through a spectral envelope and a buzz.

Statistical parametric voices (HMM and clustergen voices) do not play back recorded sound: a vocoder
rebuilds it from a smooth spectral envelope, a pitch track and a pulse-or-noise excitation. Passing a
training word through the same kind of analysis and resynthesis teaches the model that such speech is
still the word. Every 10 ms: an order-16 LPC envelope and the frame's gain, a pitch from the
autocorrelation (or none), then a pulse train at that pitch (with a little noise) or noise alone, shaped
by the envelope's all-pole filter (in the frequency domain, frame by frame, overlap-added).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.speech.commands.spec import HOP, SAMPLE_RATE, WINDOW

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

ORDER = 16
PITCH_HZ = (60.0, 400.0)
SYNTHESIS = 1024  # FFT length of the resynthesis: a window and the envelope's ringing
VOICED = 0.35  # normalised autocorrelation at the pitch period above which a frame is voiced


def vocode(sound: npt.NDArray[np.float64], rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """``sound`` resynthesized from its LPC envelopes and pitch, at its own length and loudness."""
    import numpy as np

    frames = -(-len(sound) // HOP)
    padded = np.concatenate([np.zeros(WINDOW // 2), sound, np.zeros(WINDOW + frames * HOP - len(sound))])
    windows = np.lib.stride_tricks.sliding_window_view(padded, WINDOW)[::HOP][:frames] * np.hanning(WINDOW)
    spectrum = np.fft.rfft(windows, 2 * WINDOW)
    corr = np.fft.irfft(np.abs(spectrum) ** 2)[:, :WINDOW]  # autocorrelation of every frame at once
    energy = corr[:, 0] * (1.0 + 1e-6) + 1e-10
    lags = np.abs(np.arange(ORDER)[:, None] - np.arange(ORDER)[None, :])
    toeplitz = corr[:, lags]
    toeplitz[:, np.arange(ORDER), np.arange(ORDER)] = energy[:, None]
    coefficients = np.linalg.solve(toeplitz, -corr[:, 1 : ORDER + 1, None])[:, :, 0]
    gains = np.sqrt(np.maximum(1e-12, energy + np.sum(corr[:, 1 : ORDER + 1] * coefficients, axis=1)) / WINDOW)
    shortest, longest = round(SAMPLE_RATE / PITCH_HZ[1]), round(SAMPLE_RATE / PITCH_HZ[0])
    periods = shortest + np.argmax(corr[:, shortest:longest], axis=1)
    voiced = corr[np.arange(frames), periods] / energy > VOICED

    breathiness = rng.uniform(0.0, 0.3)
    excitation = rng.standard_normal(frames * HOP)
    next_pulse = 0
    for index in np.flatnonzero(voiced).tolist():
        start, period = index * HOP, int(periods[index])
        excitation[start : start + HOP] *= breathiness
        next_pulse = max(next_pulse, start)
        while next_pulse < start + HOP:
            excitation[next_pulse] += np.sqrt(period)  # unit power at any pitch
            next_pulse += period

    # Filter frame by frame in the frequency domain (windowed excitation x the envelope), then overlap-add:
    # periodic Hann windows of two hops sum to one, so the frames join without a ripple.
    span = 2 * HOP
    padded = np.concatenate([np.zeros(HOP), excitation, np.zeros(span)])
    fade = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(span) / span)
    pieces = np.lib.stride_tricks.sliding_window_view(padded, span)[::HOP][:frames] * fade
    envelope = gains[:, None] / np.fft.rfft(np.concatenate([np.ones((frames, 1)), coefficients], axis=1), SYNTHESIS)
    filtered = np.fft.irfft(np.fft.rfft(pieces, SYNTHESIS) * envelope, SYNTHESIS)
    out = np.zeros((frames - 1) * HOP + SYNTHESIS)
    for index in range(frames):
        out[index * HOP : index * HOP + SYNTHESIS] += filtered[index]
    out = out[HOP : HOP + len(sound)]
    scale = np.sqrt(np.mean(np.square(sound)) / max(1e-20, float(np.mean(np.square(out)))))
    return np.asarray(out * scale, dtype=np.float64)
