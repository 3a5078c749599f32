"""How the stored key is estimated, as measured best on music with exact
truth (``benchmarks/accuracy.py``, ``docs/accuracy.rst``). No beets here.

Two estimates of the same audio:

* Essentia's standalone ``KeyExtractor`` with a longer frame than its
  default (8192 samples, hop 4096), which every profile but
  ``freesound`` runs;
* with the ``music`` profile also ``Key`` on the mean of the 36-bin HPCP
  frames ``MusicExtractor`` has already computed (no extra analysis).

The stored and music profiles keep the more confident of the two: each
strength divided by that estimate's typical (median) strength on the
corpus. The first is the better alone on full arrangements and solo
melodies, the second on quartets and piano music; together they beat
either. Two disagreements are settled on evidence rather than
confidence (``key_of``): ``KeyExtractor`` reading the dominant of the
HPCP's key (G major for C major) on harmony, where the HPCP's key is
right far more often (but not on a solo melody, where the mean HPCP is
the one that reads the subdominant), and ``KeyExtractor`` reading the
relative minor or major of the HPCP's key on a solo melody, where the
HPCP's is right.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ..keys import parse_key

DEFAULT_PROFILE = "bgate"
#: Keys found with less strength are not stored: on the corpus the 5 %
#: weakest KeyExtractor keys were right a quarter of the time.
DEFAULT_MIN_STRENGTH = 0.6
FRAME = {"frameSize": 8192, "hopSize": 4096}
#: Concert pitch: the tuning a track too short or quiet to estimate gets.
REFERENCE = 440.0
#: The profile of the estimate from MusicExtractor's HPCP.
HPCP_PROFILE = "edma"
#: Median strengths of the two estimates on the corpus (the scale their
#: confidences are compared on).
TYPICAL = {"keyextractor": 0.888, "hpcp": 0.759}
#: Harmony, not a solo melody: on average at least this many pitch
#: classes per chroma frame reach half of the frame's strongest. On the
#: corpus solo tunes measure 1.0-2.3 (median 1.15), chorales, quartets
#: and band arrangements 1.05-2.7 (medians 1.7-2.0); any threshold from
#: 1.2 to 1.9 gains 0.9 to 1.6 MIREX points, 1.5 loses no style.
HARMONY = 1.5


@dataclass(frozen=True)
class KeyEstimate:
    key: str  # Essentia's spelling: "C", "F#", "Bb"
    scale: str  # "major" or "minor"
    strength: float  # 0-1
    source: str  # "keyextractor" or "hpcp"

    @property
    def confidence(self) -> float:
        return self.strength / TYPICAL[self.source]


def nearest_tuning(frequency: float) -> float:
    """The A4 within a quarter tone of 440 Hz that puts the notes on the
    same grid as ``frequency``.

    Essentia's tuning estimators answer up to about 60 cents from 440 Hz:
    a recording 45 cents flat reads as 59 cents sharp, which names every
    note a semitone too low (G minor as F# minor). Folded into
    [-50, +50) cents the grid is the same and the note names are right.
    """
    if not frequency > 0:
        return REFERENCE
    cents = 1200 * np.log2(frequency / REFERENCE)
    return float(REFERENCE * 2 ** ((((cents + 50) % 100) - 50) / 1200))


def semitones_off(raw: float, tuning: float | None = None) -> int:
    """How many semitones a chroma computed on the tuning ``raw`` (an
    extractor's own, unfolded) names its notes too low against the
    track's ``tuning`` (by default ``raw`` folded, ``nearest_tuning``)."""
    if not raw > 0:
        return 0
    if tuning is None:
        tuning = nearest_tuning(raw)
    return round(float(12 * np.log2(raw / tuning)))


def key_extractor(
    es: ModuleType, mono: np.ndarray, profile: str, tuning: float
) -> KeyEstimate:
    """KeyExtractor on mono audio at 44.1 kHz, its chroma on the grid of
    the track's tuning (a folded A4, see ``nearest_tuning``)."""
    key, scale, strength = es.KeyExtractor(
        profileType=profile, tuningFrequency=tuning, **FRAME
    )(mono)
    return KeyEstimate(str(key), str(scale), float(strength), "keyextractor")


def hpcp_key(
    es: ModuleType, hpcp_frames: Any, shift: int = 0
) -> KeyEstimate | None:
    """Key on the mean of 36-bin HPCP frames, raised ``shift`` semitones
    (a chroma on an unfolded tuning, ``semitones_off``); None when the
    extractor kept no frames."""
    frames = np.asarray(hpcp_frames, np.float32)
    if frames.ndim != 2 or not len(frames) or frames.shape[1] != 36:
        return None
    mean = np.roll(frames.mean(axis=0), 3 * shift)
    key, scale, strength, _ = es.Key(
        profileType=HPCP_PROFILE, pcpSize=36, numHarmonics=4, slope=0.6,
        usePolyphony=True, useThreeChords=True,
    )(mean)  # fmt: skip
    return KeyEstimate(str(key), str(scale), float(strength), "hpcp")


def most_confident(*estimates: KeyEstimate | None) -> KeyEstimate:
    found = [e for e in estimates if e is not None]
    return max(found, key=lambda e: e.confidence)


def key_of(
    extractor: KeyEstimate, hpcp: KeyEstimate | None, hpcp_frames: Any
) -> KeyEstimate:
    """The stored key of the two estimates. Two disagreements are settled
    on what the audio is rather than on confidence: the HPCP's key wins
    over ``KeyExtractor``'s reading of its dominant on harmony
    (``polyphony`` of the HPCP frames at least ``HARMONY``), and over
    ``KeyExtractor``'s reading of its relative major or minor on a solo
    melody (below it). Any other disagreement goes to the more confident.

    On the corpus the first case is 11 of 39 quartet and piano pieces, 6
    of 49 band arrangements and 5 of 86 chorales, the HPCP right in
    nearly all; in 9 of 93 solo tunes it is the other way round. The
    second case is 5 of 93 solo tunes, the HPCP right in 4 and the
    extractor in none (on harmony, 12 tracks, the extractor is right in
    9)."""
    if hpcp is None:
        return extractor
    harmony = polyphony(hpcp_frames) >= HARMONY
    if harmony and hpcp.scale == extractor.scale:
        if _fifth_above(extractor.key, hpcp.key):
            return hpcp
    elif not harmony and _relative(extractor, hpcp):
        return hpcp
    return most_confident(extractor, hpcp)


def polyphony(hpcp_frames: Any) -> float:
    """How many pitch classes sound at once, on average: per frame of a
    12- or 36-bin chroma, those at least half as strong as the frame's
    strongest (silent frames left out); 0 with no frames."""
    frames = np.asarray(hpcp_frames, np.float64)
    if frames.ndim != 2 or not len(frames) or frames.shape[1] % 12:
        return 0.0
    per_class = frames.shape[1] // 12
    # Bin 0 is centred on a note: each class is its bin and the bins
    # either side of it.
    centred = np.roll(frames, per_class // 2, axis=1)
    classes = centred.reshape(len(frames), 12, per_class).sum(axis=2)
    strongest = classes.max(axis=1)
    sounding = classes[strongest > 1e-6] / strongest[strongest > 1e-6, None]
    if not len(sounding):
        return 0.0
    return float((sounding >= 0.5).sum(axis=1).mean())


def _fifth_above(key: str, tonic: str) -> bool:
    """Whether ``key`` is a fifth above ``tonic`` (Essentia's names)."""
    upper, lower = parse_key(key), parse_key(tonic)
    if upper is None or lower is None:
        return False
    return (upper.pitch - lower.pitch) % 12 == 7


def _relative(one: KeyEstimate, other: KeyEstimate) -> bool:
    """Whether the two are relative keys (C major and A minor)."""
    first = parse_key(f"{one.key} {one.scale}")
    return first is not None and first.relative == parse_key(
        f"{other.key} {other.scale}"
    )


def method(profile: str, min_strength: float, music: bool) -> str:
    """The key method in words, for the provenance fields: a change in
    any part makes stored keys stale."""
    frames = f"KeyExtractor {profile} {FRAME['frameSize']}/{FRAME['hopSize']}"
    both = (
        f"{frames} or the extractor's HPCP ({HPCP_PROFILE}, its key over "
        f"a dominant from polyphony {HARMONY:g}, over a relative below it)"
        if music
        else frames
    )
    return (
        f"key {both} on the tuning of peaks 100-5000 Hz from strength "
        f"{min_strength:g}"
    )
