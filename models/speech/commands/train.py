"""The classifier: a small 1-D convolutional network over the log-mel frames, and its training.

Mel bands are the channels and time the one axis (the TC-ResNet layout): on a CPU this trains several
times faster than 2-D convolutions over the spectrogram image, which is what lets the whole build fit in
a few minutes on two cores.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from models.buildkit import console
from models.speech.commands.spec import LABELS, N_MELS, UNKNOWN

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import torch

WIDTHS = (128, 128, 160, 160, 192, 192)
STRIDES = (2, 1, 2, 1, 2, 1)
EPOCHS = 22
BATCH = 128
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-3
LABEL_SMOOTHING = 0.05
# _unknown_ is one class for every other word: it has five times the windows of any command, and a prior
# that large makes a command said in an unfamiliar voice come out as _unknown_.
UNKNOWN_WEIGHT = 0.7
EMA_DECAY = 0.999  # per step: an average over the last ~1,000 steps (about six epochs)


def classifier() -> torch.nn.Module:
    """Features [batch, N_MELS, frames] -> logits [batch, classes]."""
    import torch
    from torch import nn

    layers: list[nn.Module] = [nn.BatchNorm1d(N_MELS)]
    channels = N_MELS
    for width, stride in zip(WIDTHS, STRIDES, strict=True):
        layers += [
            nn.Conv1d(channels, width, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm1d(width),
            nn.ReLU(),
        ]
        channels = width
    layers += [nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(channels, len(LABELS))]
    return torch.nn.Sequential(*layers)


def train(
    features: torch.Tensor, labels: npt.NDArray[np.int64], *, seed: int
) -> tuple[torch.nn.Module, dict[str, float]]:
    """Train on precomputed features, augmented batch by batch (``feature_augment``); return the model (in eval
    mode)."""
    import torch
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    from models.speech.commands.feature_augment import Augmenter

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    augment = Augmenter(features.shape[2])
    model = classifier()
    targets = torch.from_numpy(labels)
    steps = EPOCHS * ((len(targets) + BATCH - 1) // BATCH)
    optimiser = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=LEARNING_RATE, total_steps=steps)
    weights = torch.ones(len(LABELS))
    weights[LABELS.index(UNKNOWN)] = UNKNOWN_WEIGHT
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=LABEL_SMOOTHING)
    # The served weights are an exponential moving average of the trained ones (batch-norm statistics too):
    # flatter, and steadier on voices unlike the training set's than the last step's.
    average = AveragedModel(
        model,
        multi_avg_fn=get_ema_multi_avg_fn(EMA_DECAY),  # type: ignore[no-untyped-call]
        use_buffers=True,
    )
    started = time.perf_counter()
    model.train()
    for epoch in range(EPOCHS):
        order = torch.randperm(len(targets), generator=generator)
        total, correct = 0.0, 0
        for first in range(0, len(order), BATCH):
            batch = order[first : first + BATCH]
            inputs = augment(features[batch], generator)
            logits = model(inputs)
            loss = loss_fn(logits, targets[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            average.update_parameters(model)
            total += loss.item() * len(batch)
            correct += int((logits.argmax(1) == targets[batch]).sum())
        console.print(
            f"  epoch {epoch + 1:2d}/{EPOCHS}: loss {total / len(order):.4f}, "
            f"train accuracy {correct / len(order):.4f} ({time.perf_counter() - started:.0f} s)"
        )
    served: torch.nn.Module = average.module
    served.eval()
    return served, {"final_train_loss": total / len(order), "final_train_accuracy": correct / len(order)}
