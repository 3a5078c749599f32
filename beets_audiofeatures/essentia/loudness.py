"""EBU R128 loudness (integrated and loudness range) in numpy.

The same measure as Essentia's ``LoudnessEBUR128`` at a fraction of its
cost: instead of running the K-weighting filters over every sample, each
channel is cut into 100 ms segments and the filters' power response is
applied to each segment's spectrum (Parseval); the 400 ms momentary
blocks and 3 s short-term windows are sums of whole segments. On music
the two agree within a few hundredths of a LU (``tests/test_stored_profile.py``).
No beets here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: BS.1770's offset, absolute and relative gates (LU / LUFS).
OFFSET = -0.691
ABSOLUTE_GATE = -70.0
RELATIVE_GATE = -10.0
RANGE_RELATIVE_GATE = -20.0
SEGMENT_SECONDS = 0.1
BLOCK_SEGMENTS = 4  # 400 ms momentary blocks
SHORT_TERM_SEGMENTS = 30  # 3 s short-term windows
#: Segments per FFT call: small enough for the spectra to stay in cache.
CHUNK = 32


@dataclass(frozen=True)
class Loudness:
    integrated: float  # LUFS
    loudness_range: float  # LU


def _biquad_power(
    b: tuple[float, float, float],
    a: tuple[float, float, float],
    omega: np.ndarray,
) -> np.ndarray:
    z = np.exp(-1j * omega)
    numerator = b[0] + b[1] * z + b[2] * z * z
    denominator = a[0] + a[1] * z + a[2] * z * z
    power: np.ndarray = np.abs(numerator / denominator) ** 2
    return power


def k_weighting_power(rate: float, bins: int, size: int) -> np.ndarray:
    """|H|² of BS.1770's K-weighting (the high shelf and the RLB high
    pass, designed for ``rate`` as libebur128 and Essentia do) at the
    first ``bins`` frequencies of an FFT of ``size`` samples."""
    omega = 2 * np.pi * np.arange(bins) / size
    f0, gain, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10 ** (gain / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = _biquad_power(
        (
            (vh + vb * k / q + k * k) / a0,
            2 * (k * k - vh) / a0,
            (vh - vb * k / q + k * k) / a0,
        ),
        (1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0),
        omega,
    )
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    a0 = 1 + k / q + k * k
    high_pass = _biquad_power(
        (1.0, -2.0, 1.0),
        (1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0),
        omega,
    )
    return shelf * high_pass


def segment_energies(signal: np.ndarray, rate: float) -> np.ndarray:
    """The K-weighted energy of each 100 ms segment, summed over the two
    channels of ``signal`` (samples × 2, or mono)."""
    hop = round(rate * SEGMENT_SECONDS)
    count = len(signal) // hop
    if count == 0:
        return np.zeros(0)
    if signal.ndim == 1:
        signal = np.stack([signal, np.zeros_like(signal)], axis=1)
    # Both channels in one complex FFT, left + i·right: as the weighting
    # is the same for both and symmetric in frequency, the sum of their
    # weighted powers is the weighted power of the complex spectrum.
    both = np.ascontiguousarray(signal[:, :2], dtype=np.float32)
    segments = both[: count * hop].view(np.complex64).reshape(count, hop)
    weights = k_weighting_power(rate, hop, hop)  # the full circle
    energies = np.empty(count)
    for start in range(0, count, CHUNK):
        chunk = segments[start : start + CHUNK].astype(np.complex128)
        spectra = np.fft.fft(chunk, axis=1)
        power = spectra.real**2 + spectra.imag**2
        energies[start : start + CHUNK] = power @ weights / hop**2
    return energies


def _windowed_means(energies: np.ndarray, width: int) -> np.ndarray:
    if len(energies) < width:
        return np.zeros(0)
    sums = np.cumsum(np.concatenate(([0.0], energies)))
    means: np.ndarray = (sums[width:] - sums[:-width]) / (width * 1.0)
    return means


def _lufs(power: np.ndarray | float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        level: np.ndarray = OFFSET + 10 * np.log10(power)
    return level


def _gated_mean(blocks: np.ndarray, relative: float) -> tuple[float, np.ndarray]:
    """The power mean of the blocks above the absolute gate and the
    relative gate below it; and the blocks kept."""
    kept = blocks[_lufs(blocks) > ABSOLUTE_GATE]
    if not len(kept):
        return 0.0, kept
    threshold = float(_lufs(float(np.mean(kept)))) + relative
    kept = kept[_lufs(kept) > threshold]
    return (float(np.mean(kept)) if len(kept) else 0.0), kept


def ebu_r128(signal: np.ndarray, rate: float) -> Loudness:
    """Integrated loudness and loudness range of ``signal`` (samples ×
    channels, each channel weighted 1 as for stereo)."""
    energies = segment_energies(signal, rate)
    momentary = _windowed_means(energies, BLOCK_SEGMENTS)
    integrated_power, _ = _gated_mean(momentary, RELATIVE_GATE)
    integrated = float(_lufs(integrated_power)) if integrated_power else -math.inf
    short_term = _windowed_means(energies, SHORT_TERM_SEGMENTS)
    _, kept = _gated_mean(short_term, RANGE_RELATIVE_GATE)
    loudness_range = 0.0
    if len(kept):
        levels = _lufs(kept)
        low, high = np.percentile(levels, (10, 95))
        loudness_range = float(high - low)
    return Loudness(integrated, loudness_range)
