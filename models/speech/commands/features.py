"""The log-mel front end, as graph layers: waveform in, normalised log-mel spectrogram out.

The graph computes the features itself, so V2 clients send plain waveforms and nothing on the server can
drift from what the model was trained on. The short-time Fourier transform is a strided convolution with
windowed cosine and sine kernels (a zero-padded 512-point DFT of each 25 ms window), followed by the power,
a mel filterbank matrix and a log relative to the window's loudest bin, which makes the features blind to
the recording's gain. Training computes the same numbers faster with ``torch.fft`` (``fast_log_mel``);
the build checks that both agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.speech.commands.spec import F_MAX, F_MIN, FLOOR, HOP, N_FFT, N_MELS, SAMPLE_RATE, WINDOW

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import torch

BINS = N_FFT // 2 + 1


def mel_filterbank() -> npt.NDArray[np.float32]:
    """Triangular filters, equally spaced on the HTK mel scale, each peaking at 1: [N_MELS, BINS]."""
    import numpy as np

    def mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def hz(mels: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(np.array(F_MIN)), mel(np.array(F_MAX)), N_MELS + 2))
    freqs = np.arange(BINS) * SAMPLE_RATE / N_FFT
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def hann() -> npt.NDArray[np.float64]:
    import numpy as np

    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW) / WINDOW)  # periodic, as torch.hann_window


def dft_kernels() -> npt.NDArray[np.float32]:
    """Conv1d weights [2 * BINS, 1, WINDOW]: the windowed real and imaginary DFT rows."""
    import numpy as np

    phase = 2 * np.pi * np.outer(np.arange(BINS), np.arange(WINDOW)) / N_FFT
    rows = np.concatenate([np.cos(phase), -np.sin(phase)]) * hann()
    return rows[:, None, :].astype(np.float32)


def relative_log(mel: torch.Tensor) -> torch.Tensor:
    """log mel power relative to each clip's loudest bin, floored 60 dB below it: gain-invariant features."""
    import torch

    peak = torch.amax(mel, dim=(1, 2), keepdim=True)
    return torch.log(mel + FLOOR * peak + 1e-12) - torch.log(peak + 1e-12)


def log_mel_module() -> torch.nn.Module:
    """The front end as exportable layers: waveform [batch, samples] -> features [batch, N_MELS, frames]."""
    import torch

    class LogMel(torch.nn.Module):
        dft: torch.Tensor
        mel: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("dft", torch.from_numpy(dft_kernels()))
            self.register_buffer("mel", torch.from_numpy(mel_filterbank()))

        def forward(self, waveform: torch.Tensor) -> torch.Tensor:
            spectrum = torch.nn.functional.conv1d(waveform.unsqueeze(1), self.dft, stride=HOP)
            power = spectrum[:, :BINS] ** 2 + spectrum[:, BINS:] ** 2
            return relative_log(torch.matmul(self.mel, power))

    return LogMel().eval()


def fast_log_mel(waveforms: torch.Tensor) -> torch.Tensor:
    """The same features through torch.fft, for the training set (several times faster than the convolution)."""
    import torch

    frames = waveforms.unfold(1, WINDOW, HOP) * torch.from_numpy(hann().astype("float32"))
    power = torch.fft.rfft(frames, n=N_FFT).abs() ** 2  # [batch, frames, BINS]
    mel = torch.matmul(torch.from_numpy(mel_filterbank()), power.transpose(1, 2))
    return relative_log(mel)
