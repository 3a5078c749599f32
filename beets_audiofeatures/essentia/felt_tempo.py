"""The tempo at the felt beat: when the beat tracker's pulse runs twice as
fast as the music moves, keep every other beat. No beets here.

Beat trackers lock on to the fastest regular pulse: in a chorale, a hymn
or a slow ballad that is the eighth notes of the passing tones, and the
tempo comes out at twice the beat people tap (``docs/accuracy.rst``: most
tempo misses on the development corpus are such doubles). Two pieces of
evidence in the audio say so together:

* the harmony moves on every other tick: the chroma changes much more on
  one parity of the ticks than on the other, and on both beats of that
  parity within a bar (so a chord per bar, as pop music has, does not
  count);
* there are fewer note onsets than ticks: the ticks are denser than the
  events (a band with drums has at least one onset per beat).

Only a fast pulse is halved (above 120 BPM), so a slow song stays as it
is. Measured on the development corpus (``benchmarks/accuracy.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

#: Only a tempo above this is a candidate for halving.
HALVE_ABOVE = 120.0
#: How much more the harmony must change on the strong parity of ticks.
PARITY_RATIO = 1.3
#: Fewer onsets than this per tick: the ticks outrun the events.
ONSETS_PER_TICK = 1.0
#: Chroma frames either side of a tick that the change is measured over.
SPAN = 4


@dataclass(frozen=True)
class Evidence:
    """What the rule looks at, kept for ``--dump``."""

    parity_ratio: float  # chord change on the strong parity / the other
    bar_ratio: float  # the weaker strong-parity beat / the stronger other
    onsets_per_tick: float
    strong: int  # 0 or 1: the parity the harmony moves on


def pitch_classes(hpcp: np.ndarray) -> np.ndarray:
    """36-bin HPCP frames as 12 pitch classes (each the sum of the bin on
    the note and its two neighbours)."""
    frames = np.asarray(hpcp, np.float64)
    if frames.ndim != 2 or frames.shape[1] != 36:
        return np.zeros((0, 12))
    classes: np.ndarray = (
        np.roll(frames, 1, axis=1).reshape(len(frames), 12, 3).sum(axis=2)
    )
    return classes


def harmonic_change(chroma: np.ndarray, span: int = SPAN) -> np.ndarray:
    """Per frame: how unlike the ``span`` frames before are to the
    ``span`` after (cosine distance of their sums; 0 where either is
    silent or the file's edges leave no room)."""
    frames = np.asarray(chroma, np.float64)
    change = np.zeros(len(frames))
    if len(frames) <= 2 * span:
        return change
    sums = np.cumsum(np.vstack([np.zeros(frames.shape[1]), frames]), axis=0)
    at = np.arange(span, len(frames) - span)
    before = sums[at] - sums[at - span]
    after = sums[at + span + 1] - sums[at + 1]
    norms = np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1)
    alike = np.einsum("ij,ij->i", before, after)
    change[at] = np.where(norms > 0, 1 - alike / np.maximum(norms, 1e-30), 0)
    return change


def evidence(
    ticks: np.ndarray, onsets: int, chroma: np.ndarray, frame_seconds: float
) -> Evidence | None:
    """The evidence for halving, or None with too few ticks to tell."""
    ticks = np.asarray(ticks, np.float64)
    change = harmonic_change(chroma)
    if len(ticks) < 8 or len(change) < 3:
        return None
    at = np.clip(
        np.round(ticks / frame_seconds).astype(int), 1, len(change) - 2
    )
    near = np.maximum(np.maximum(change[at - 1], change[at]), change[at + 1])
    parity = np.array([near[p::2].mean() for p in (0, 1)])
    quarter = np.array([near[p::4].mean() for p in range(4)])
    strong = int(np.argmax(parity))
    ours, others = (
        quarter[[strong, strong + 2]],
        quarter[[1 - strong, 3 - strong]],
    )
    return Evidence(
        parity_ratio=float(parity.max() / max(parity.min(), 1e-9)),
        bar_ratio=float(ours.min() / max(others.max(), 1e-9)),
        onsets_per_tick=onsets / len(ticks),
        strong=strong,
    )


def felt_ticks(
    bpm: float,
    ticks: np.ndarray,
    onsets: int,
    chroma: np.ndarray,
    frame_seconds: float,
) -> np.ndarray:
    """The beats people tap: ``ticks``, or every other one of them when
    the evidence says the tracker's pulse is twice the felt one."""
    if bpm <= HALVE_ABOVE:
        return np.asarray(ticks)
    found = evidence(ticks, onsets, chroma, frame_seconds)
    if (
        found is None
        or found.parity_ratio <= PARITY_RATIO
        or found.bar_ratio <= 1.0
        or found.onsets_per_tick >= ONSETS_PER_TICK
    ):
        return np.asarray(ticks)
    return np.asarray(ticks)[found.strong :: 2]


def tempo_of(intervals: np.ndarray) -> float:
    """``RhythmExtractor2013``'s tempo from the beat intervals: the mean
    of the per-beat tempos within 5 BPM of the most common one (counted
    in 2-BPM bins)."""
    if not len(intervals):
        return 0.0
    estimates = 60.0 / intervals
    counts = np.bincount(np.maximum(estimates / 2 + 0.5, 0).astype(int))
    closest = float(np.argmax(counts) * 2)
    near = estimates[np.abs(closest - estimates) < 5.0]
    return float(np.mean(near)) if len(near) else closest


def beat_tempo(es: ModuleType, ticks: np.ndarray) -> dict[str, Any]:
    """The tempo, beat count and beat-histogram peak weight of ``ticks``
    (seconds), as every profile stores them: the weight from the beats
    kept, so all profiles give it on one scale."""
    intervals = np.diff(np.asarray(ticks, np.float64))
    return {
        "rhythm.bpm": tempo_of(intervals),
        "rhythm.beats_count": len(ticks),
        "rhythm.bpm_histogram_first_peak_weight": (
            float(es.BpmHistogramDescriptors()(intervals.astype(np.float32))[1])
            if len(intervals)
            else 0.0
        ),
    }


def method() -> str:
    """The rule in words, for the provenance field."""
    return (
        f"halved above {HALVE_ABOVE:g} BPM on harmony every other beat "
        f"({PARITY_RATIO:g}) and under {ONSETS_PER_TICK:g} onset per beat"
    )
