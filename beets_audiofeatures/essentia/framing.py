"""Frames and windows as Essentia cuts and shapes them, for the
pipelines that compute their own spectra (``stored``) and the tuning
estimate. No beets here."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import numpy as np

#: Frames handed to one FFT call: bounds the memory of a long file.
SLICE = 64


def frame_count(samples: int, hop: int, centred: bool) -> int:
    """How many frames Essentia's ``FrameCutter`` cuts: from the first
    sample (``startFromZero``) or centred on it."""
    if centred:
        return -(-samples // hop) + 1
    return max(1, -(-samples // hop) - 1)


def frames(
    signal: np.ndarray, size: int, hop: int, centred: bool
) -> Iterator[np.ndarray]:
    """Slices of ``FrameCutter``'s frames (frames × size, float64),
    zero-padded at the ends as it pads them; each slice is copied from
    the signal on its own, so a long file never has a second copy."""
    count = frame_count(len(signal), hop, centred)
    front = size // 2 if centred else 0
    for first in range(0, count, SLICE):
        last = min(first + SLICE, count)
        start = first * hop - front
        buffer = np.zeros((last - first - 1) * hop + size)
        low, high = max(start, 0), min(start + len(buffer), len(signal))
        if high > low:
            buffer[low - start : high - start] = signal[low:high]
        yield np.lib.stride_tricks.sliding_window_view(buffer, size)[::hop]


@cache
def essentia_window(kind: str, size: int) -> np.ndarray:
    import essentia.standard as es

    ones = np.ones(size, np.float32)
    # Essentia's own window, its normalisation included; zero phase
    # only rotates the frame, which no value here depends on.
    window = es.Windowing(type=kind, size=size, zeroPhase=False)(ones)
    return np.asarray(window, np.float64)
