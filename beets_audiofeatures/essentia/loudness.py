"""EBU R128 loudness (integrated and loudness range) in numpy.

The same measure as Essentia's ``LoudnessEBUR128`` at a fraction of its
cost: instead of running the K-weighting filters over every sample, each
channel is cut into 100 ms segments and the filters' power response is
applied to each segment's spectrum (Parseval); the 400 ms momentary
blocks and 3 s short-term windows are sums of whole segments, gated as
Essentia gates them. The values are those of the K-weighting filters run
exactly (checked against ``scipy.signal.lfilter``); Essentia's own
streaming filter reads up to 0.1 LU louder on bass-heavy music (0.06 LU
typical on the corpus, 0.02 on the tests' files; the loudness range
within 0.05 LU). No beets here.
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
    b: tuple[float, ...], a: tuple[float, ...], omega: np.ndarray
) -> np.ndarray:
    z = np.exp(-1j * omega)
    numerator = b[0] + b[1] * z + b[2] * z * z
    denominator = a[0] + a[1] * z + a[2] * z * z
    power: np.ndarray = np.abs(numerator / denominator) ** 2
    return power


#: The K-weighting biquads (high shelf, then RLB high pass) as Essentia's
#: ``LoudnessEBUR128Filter`` has them: its own rounded design for
#: 44.1 kHz, BS.1770's table for 48 kHz, to which it resamples any other
#: rate. Matching it keeps values comparable with ``music``'s (a precise
#: 44.1 kHz design reads up to 0.15 LU louder on hi-hats).
WEIGHTING: dict[float, tuple[tuple[float, ...], ...]] = {
    44100.0: (
        (1.535, -2.633, 1.151), (1.0, -1.647, 0.701),
        (1.0, -2.0, 1.0), (1.0, -1.9891, 0.98913),
    ),
    48000.0: (
        (1.53512485958697, -2.69169618940638, 1.19839281085285),
        (1.0, -1.69065929318241, 0.73248077421585),
        (1.0, -2.0, 1.0),
        (1.0, -1.99004745483398, 0.99007225036621),
    ),
}  # fmt: skip


def k_weighting_power(rate: float, bins: int, size: int) -> np.ndarray:
    """|H|² of the K-weighting at the first ``bins`` frequencies of an FFT
    of ``size`` samples at ``rate`` (``bins`` may run past the Nyquist
    frequency, to the full circle; the weighting is symmetric)."""
    design = 44100.0 if rate == 44100.0 else 48000.0
    shelf_b, shelf_a, pass_b, pass_a = WEIGHTING[design]
    hertz = np.arange(bins) * rate / size
    hertz = np.minimum(hertz, rate - hertz)  # the mirrored half
    omega = 2 * np.pi * hertz / design
    power: np.ndarray = _biquad_power(shelf_b, shelf_a, omega) * _biquad_power(
        pass_b, pass_a, omega
    )
    # Resampled to 48 kHz, a faster rate loses what lies above 24 kHz.
    power[hertz > design / 2] = 0.0
    return power


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


def _gated_mean(
    blocks: np.ndarray, relative: float
) -> tuple[float, np.ndarray]:
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
    # A file shorter than a window is measured zero-padded to one, as
    # Essentia's frame cutter pads it (not taken for silence).
    padded = np.zeros(SHORT_TERM_SEGMENTS)
    padded[: len(energies)] = energies[:SHORT_TERM_SEGMENTS]
    if len(energies) < BLOCK_SEGMENTS:
        energies = padded[:BLOCK_SEGMENTS]
    momentary = _windowed_means(energies, BLOCK_SEGMENTS)
    integrated_power, _ = _gated_mean(momentary, RELATIVE_GATE)
    integrated = (
        float(_lufs(integrated_power)) if integrated_power else -math.inf
    )
    short_term = _windowed_means(
        energies if len(energies) >= SHORT_TERM_SEGMENTS else padded,
        SHORT_TERM_SEGMENTS,
    )
    _, kept = _gated_mean(short_term, RANGE_RELATIVE_GATE)
    loudness_range = 0.0
    if len(kept):
        levels = _lufs(kept)
        low, high = np.percentile(levels, (10, 95))
        loudness_range = float(high - low)
    return Loudness(integrated, loudness_range)
