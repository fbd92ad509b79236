"""Augmentation of log-mel features while training: new voices, rates and microphones in every epoch.

The training windows' features are computed once; each batch is then changed on the fly, which costs a
few batched matrix products instead of new audio:

- **vocal-tract length** (VTLP): the mel axis is warped as if every frequency were scaled by 0.82-1.2, a
  shorter or longer vocal tract with its pitch scaled alike;
- **tempo**: the frames are stretched about the window's centre by 0.8-1.25, faster or slower speech at the
  same pitch;
- **smoothing**: the bands and the frames blurred by up to 1.5 bands and 2 frames, the smooth spectra and
  trajectories of a statistical parametric (vocoded) voice;
- **equalisation**: a smooth random curve of up to about +-8 dB across the bands, another microphone or
  synthesizer's spectral tilt;
- **SpecAugment**: two bands of up to 6 mel bins and two spans of up to 10 frames hidden.

Each clip's features stay what the front end gives: relative to its loudest bin and floored 60 dB below.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from models.speech.commands.spec import F_MAX, F_MIN, FLOOR, N_MELS

if TYPE_CHECKING:
    import torch

WARPS = (0.82, 1.2)  # frequency scaling of the vocal-tract warp
TEMPOS = (0.8, 1.25)  # frames of the original per frame of the augmented clip
LEVELS = 17  # warps and tempos are drawn from this many steps (one interpolation matrix each)
BLURRED = 0.3  # share of the clips blurred
BLURS = (1.5, 2.0)  # the largest Gaussian blur (standard deviation) across bands and across frames
EQ_NATS = 0.6  # amplitude of each of the three cosine terms of the equalisation curve (0.6 nats = 2.6 dB)
BAND_MASKS, BAND_WIDTH = 2, 6
TIME_MASKS, TIME_WIDTH = 2, 10


def interpolation(positions: torch.Tensor, size: int) -> torch.Tensor:
    """[size, size] matrix whose row i reads the input at fractional index ``positions[i]`` (linear
    interpolation; positions outside the input read nothing, which the caller fills with the floor)."""
    import torch

    lower = positions.floor()
    weight = positions - lower
    rows = torch.zeros(size, size)
    for offset, share in ((0, 1 - weight), (1, weight)):
        index = lower.long() + offset
        valid = (index >= 0) & (index < size)
        rows[torch.arange(size)[valid], index[valid]] += share[valid]
    return rows


def blur_matrices(size: int, largest: float) -> torch.Tensor:
    """[LEVELS, size, size]: Gaussian blurs of standard deviation 0 to ``largest``, rows summing to 1."""
    import torch

    index = torch.arange(size, dtype=torch.float32)
    distance = (index.view(-1, 1) - index.view(1, -1)) ** 2
    matrices = [torch.eye(size)]
    for sigma in torch.linspace(0, largest, LEVELS)[1:]:
        kernel = torch.exp(-distance / (2 * sigma**2))
        matrices.append(kernel / kernel.sum(dim=1, keepdim=True))
    return torch.stack(matrices)


def warp_matrices() -> torch.Tensor:
    """[LEVELS, N_MELS, N_MELS]: band i of a warped clip reads the band whose centre is at freq(i) / alpha."""
    import torch

    mel = torch.linspace(_mel(F_MIN), _mel(F_MAX), N_MELS + 2)[1:-1]
    hz = 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    step = (_mel(F_MAX) - _mel(F_MIN)) / (N_MELS + 1)
    matrices = []
    for alpha in torch.linspace(*WARPS, LEVELS):
        source = 2595.0 * torch.log10(1.0 + hz / alpha / 700.0)
        matrices.append(interpolation((source - _mel(F_MIN)) / step - 1, N_MELS))
    return torch.stack(matrices)


def tempo_matrices(frames: int) -> torch.Tensor:
    """[LEVELS, frames, frames]: frame t of a stretched clip reads frame centre + (t - centre) * rate."""
    import torch

    centre = (frames - 1) / 2
    times = torch.arange(frames, dtype=torch.float32)
    rates = torch.linspace(*TEMPOS, LEVELS)
    return torch.stack([interpolation(centre + (times - centre) * rate, frames) for rate in rates])


class Augmenter:
    """The fixed matrices of the augmentation, made once for windows of ``frames`` frames."""

    def __init__(self, frames: int) -> None:
        self.warps, self.tempos = warp_matrices(), tempo_matrices(frames)
        self.band_blurs, self.frame_blurs = blur_matrices(N_MELS, BLURS[0]), blur_matrices(frames, BLURS[1])

    def __call__(self, features: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return augment(features, self, generator)


def augment(features: torch.Tensor, matrices: Augmenter, generator: torch.Generator) -> torch.Tensor:
    """``features`` [batch, N_MELS, frames] with a random warp, tempo, blur, equalisation and masks each."""
    import torch

    batch, bands, _ = features.shape
    floor = math.log(FLOOR)

    def pick(stack: torch.Tensor) -> torch.Tensor:
        return stack[torch.randint(0, LEVELS, (batch,), generator=generator)]

    # Some clips are blurred; every clip is warped and stretched (by a factor near 1 as often as not).
    blurred = torch.rand(batch, generator=generator) < BLURRED
    band_blur = torch.where(blurred.view(-1, 1, 1), pick(matrices.band_blurs), torch.eye(bands))
    frame_blur = torch.where(blurred.view(-1, 1, 1), pick(matrices.frame_blurs), torch.eye(features.shape[2]))
    covered = features - floor  # >= 0; what interpolation leaves out reads as the floor
    covered = torch.bmm(torch.bmm(band_blur, pick(matrices.warps)), covered)
    covered = torch.bmm(covered, torch.bmm(frame_blur, pick(matrices.tempos)).transpose(1, 2))
    shaped = covered + floor
    position = torch.linspace(0, math.pi, bands).view(1, -1, 1)
    amplitude = (torch.rand(batch, 3, 1, generator=generator) * 2 - 1) * EQ_NATS
    curve = sum(amplitude[:, k : k + 1] * torch.cos((k + 1) * position) for k in range(3))
    shaped = shaped + curve * (shaped > floor)  # the floor stays the floor: equalising silence adds nothing
    shaped = shaped - shaped.amax(dim=(1, 2), keepdim=True)
    shaped = shaped.clamp(min=floor)
    return mask(shaped, generator)


def mask(features: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """SpecAugment: bands and spans of frames set to the clip's floor."""
    import torch

    batch, bands, frames = features.shape
    floor = features.amin(dim=(1, 2), keepdim=True)
    rows = torch.arange(bands).view(1, -1, 1)
    cols = torch.arange(frames).view(1, 1, -1)
    hidden = torch.zeros(batch, bands, frames, dtype=torch.bool)
    for count, width, size, axis in ((BAND_MASKS, BAND_WIDTH, bands, rows), (TIME_MASKS, TIME_WIDTH, frames, cols)):
        for _ in range(count):
            start = torch.randint(0, size, (batch, 1, 1), generator=generator)
            span = torch.randint(0, width + 1, (batch, 1, 1), generator=generator)
            hidden |= (axis >= start) & (axis < start + span)
    return torch.where(hidden, floor, features)


def _mel(hz: float) -> float:
    return 2595.0 * math.log10(1.0 + hz / 700.0)
