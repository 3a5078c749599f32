"""A track's tuning (the frequency of its A4), estimated before its key:
one estimator for every profile that stores a key. No beets here.

Each spectral peak between 100 Hz and 5 kHz says how far, in cents, its
note is from the 440 Hz grid. The deviations, weighted by the peaks'
magnitudes, fill a histogram of one semitone (a deviation of +49 cents
is next to one of -49); its strongest 5-cent band is the tuning, refined
to the weighted mean of the deviations within 10 cents of it.

Why not Essentia's ``TuningFrequency``, which every extractor runs:
measured on the rendered corpus and a copy of each track detuned by a
known 10 to 50 cents (``docs/accuracy.rst``), this reads the detuning to
within 0.6 cents (standard deviation) where Essentia is off by more than
5 cents on a quarter of the tracks, and on short tracks with drums it
read 44 cents flat. Its peaks start at 40 Hz, where a bin of a
4096-sample frame is a semitone wide and a kick drum's falling pitch
lands anywhere; their frequencies are interpolated on the linear
magnitude, which pulls them towards the bin; and it takes the single
strongest cent of the histogram, not the band around it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .framing import SLICE, essentia_window
from .key_estimation import REFERENCE, nearest_tuning

SAMPLE_RATE = 44100.0
#: The frame the estimator reads: MusicExtractor's tonal frames.
FRAME = 4096
#: Where harmonic partials are: below, a bin is a semitone wide and
#: drums are loud; above, few instruments have partials worth reading.
LOWEST, HIGHEST = 100.0, 5000.0
#: A peak weaker than this is noise: SpectralPeaks' threshold, on a
#: spectrum windowed as Essentia's ``Windowing`` does (area 2).
MIN_MAGNITUDE = 1e-5
#: A peak this far below its frame's strongest is not read.
RELATIVE_FLOOR = 10 ** (-40 / 20)
#: The band of the histogram a tuning is chosen by, and the reach of the
#: deviations averaged around it, in cents.
BAND = 5
REACH = 10
#: Less than this many seconds of frames with peaks is too little to
#: estimate from; so is a histogram whose best band holds less than this
#: many times its share of a flat histogram (noise).
MIN_SECONDS = 1.0
MIN_CONCENTRATION = 1.5

_FIRST_BIN = int(LOWEST * FRAME / SAMPLE_RATE)
_LAST_BIN = int(HIGHEST * FRAME / SAMPLE_RATE) + 1


class TuningHistogram:
    """Deviations from the 440 Hz grid, fed the magnitude spectra of
    frames ``hop`` samples apart (``FRAME`` samples at 44.1 kHz, Essentia's
    ``blackmanharris62`` window) a batch at a time."""

    def __init__(self, hop: int) -> None:
        self.hop = hop
        # Per cent of deviation: the peaks' weight, and their deviations
        # as weighted unit phasors (a circular mean needs no more).
        self.weights = np.zeros(100)
        self.phasors = np.zeros(100, np.complex128)
        self.frames = 0

    def add(self, spectra: np.ndarray) -> None:
        """Read the peaks of ``spectra`` (frames × FRAME // 2 + 1)."""
        band = np.asarray(
            spectra[:, _FIRST_BIN - 1 : _LAST_BIN + 2], np.float64
        )
        middle = band[:, 1:-1]
        floor = np.maximum(
            MIN_MAGNITUDE, RELATIVE_FLOOR * middle.max(axis=1, keepdims=True)
        )
        is_peak = (
            (middle > band[:, :-2])
            & (middle >= band[:, 2:])
            & (middle >= floor)
        )
        frame, column = np.nonzero(is_peak)
        self.frames += len(np.unique(frame))
        if not len(frame):
            return
        # The top of a parabola through the log magnitudes of the peak's
        # bin and its neighbours: unbiased for this window, where one
        # through the magnitudes is pulled towards the bin.
        left, top, right = (
            np.log(np.maximum(band[frame, column + offset], 1e-30))
            for offset in range(3)
        )
        curvature = left - 2 * top + right
        shift = np.clip(
            0.5 * (left - right) / np.where(curvature < 0, curvature, -1),
            -0.5, 0.5,
        )  # fmt: skip
        hertz = (_FIRST_BIN + column + shift) * (SAMPLE_RATE / FRAME)
        keep = (hertz >= LOWEST) & (hertz <= HIGHEST)
        cents = 1200 * np.log2(hertz[keep] / REFERENCE)
        weight = np.exp(top[keep] - 0.25 * (left - right)[keep] * shift[keep])
        deviation = (cents + 50) % 100 - 50
        index = np.floor(deviation + 50).astype(np.int64) % 100
        self.weights += np.bincount(index, weights=weight, minlength=100)
        self.phasors += np.bincount(
            index, weights=weight * np.cos(2 * np.pi * deviation / 100),
            minlength=100,
        ) + 1j * np.bincount(
            index, weights=weight * np.sin(2 * np.pi * deviation / 100),
            minlength=100,
        )  # fmt: skip

    def concentration(self) -> float:
        """How many times its share of a flat histogram the best band
        holds (1 for noise)."""
        banded = self._banded()
        total = float(banded.sum())
        return float(banded.max()) * 100 / total if total > 0 else 0.0

    def _banded(self) -> np.ndarray:
        wrapped = np.concatenate(
            [
                self.weights[-BAND // 2 :],
                self.weights,
                self.weights[: BAND // 2],
            ]
        )
        banded: np.ndarray = np.convolve(wrapped, np.ones(BAND), "valid")
        return banded

    def frequency(self) -> float:
        """The estimated A4 (Hz), folded into the quarter tone around
        440 Hz (``nearest_tuning``); 440 Hz where there is too little to
        estimate from."""
        seconds = self.frames * self.hop / SAMPLE_RATE
        if seconds < MIN_SECONDS or self.concentration() < MIN_CONCENTRATION:
            return REFERENCE
        best = int(np.argmax(self._banded()))
        near = (np.arange(best - REACH, best + REACH + 1)) % 100
        cents = np.angle(self.phasors[near].sum()) / (2 * np.pi) * 100
        return nearest_tuning(REFERENCE * 2 ** (cents / 1200))


def _spectra(mono: np.ndarray, hop: int) -> Iterator[np.ndarray]:
    """Magnitude spectra of ``mono``'s frames, a slice at a time (a long
    file's frames are never all in memory)."""
    count = max(0, (len(mono) - FRAME) // hop + 1)
    window = essentia_window("blackmanharris62", FRAME)
    for first in range(0, count, SLICE):
        last = min(first + SLICE, count)
        chunk = np.asarray(
            mono[first * hop : (last - 1) * hop + FRAME], np.float64
        )
        frames = np.lib.stride_tricks.sliding_window_view(chunk, FRAME)[::hop]
        yield np.abs(np.fft.rfft(frames * window, axis=1))


def estimate_tuning(mono: np.ndarray) -> float:
    """The A4 of mono audio at 44.1 kHz (see ``TuningHistogram``), from
    frames a whole frame apart: every frame is read, each once, and half
    of MusicExtractor's overlapping frames read as well as all."""
    histogram = TuningHistogram(hop=FRAME)
    for spectra in _spectra(mono, hop=FRAME):
        histogram.add(spectra)
    return histogram.frequency()
