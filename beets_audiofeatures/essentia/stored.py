"""The ``stored`` profile's pipeline: exactly the fields the plugin stores,
from one decode, each spectrum computed once.

Where ``MusicExtractor`` runs a few hundred descriptors to keep a dozen,
this computes the dozen, with the algorithms ``music`` uses, but feeds
them spectra computed once in numpy for all the frames of a file (one
FFT call per slice of frames instead of a trip through Essentia's frame
loop per frame):

* the 2048/1024 Hann spectra give the complex-domain onset function of
  ``RhythmExtractor2013`` (degara), whose beats and tempo follow from
  ``TempoTapDegara`` exactly as there, and the spectral centroid (the
  equal-loudness curve applied to the power spectrum);
* the 1024/512 Hann spectra give the HFC and complex-domain onset
  functions of ``OnsetRate``, then ``Onsets``;
* the 4096/2048 Blackman-Harris spectra give the tuning (``tuning``, as
  every profile estimates it) and ``MusicExtractor``'s 36-bin HPCP
  frames, whose key is compared with ``KeyExtractor``'s as the
  ``music`` profile does (``key_estimation``);
* EBU R128 loudness comes from ``loudness`` (within 0.02 LU of
  Essentia's ``LoudnessEBUR128``), danceability and dynamic complexity
  from Essentia's own algorithms on the decoded signal.

Values match ``music``'s: the same beats and onsets to the sample, the
same keys where the same estimate wins (``docs/performance.rst``).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import numpy as np

from .felt_tempo import beat_tempo, felt_ticks, pitch_classes
from .framing import essentia_window, frames
from .key_estimation import (
    hpcp_key,
    key_extractor,
    key_of,
)
from .loudness import ebu_r128
from .pipelines import (
    LENGTH,
    SAMPLE_RATE,
    SILENCE_RMS,
    SILENT,
    TONAL_HOP,
    AnalysisError,
    Pipeline,
    nested,
)
from .tuning import TuningHistogram

#: The mean power under which ``MusicExtractor`` takes a frame for silent
#: (measured: it matches its spectral centroid within 0.5 % on the corpus).
SILENT_POWER = 1e-12


@cache
def _equal_loudness_power(size: int) -> np.ndarray:
    """|H|² of Essentia's ``EqualLoudness`` filter at a real FFT's bins."""
    import essentia.standard as es

    impulse = np.zeros(8 * size, np.float32)
    impulse[0] = 1
    response = np.asarray(es.EqualLoudness()(impulse), np.float64)
    power = np.abs(np.fft.rfft(response))[::8] ** 2
    return np.asarray(power[: size // 2 + 1])


class ComplexDomain:
    """The complex-domain onset function (Bello), frame by frame as
    Essentia's ``OnsetDetection(method="complex")``: the distance of
    each bin from its prediction by the two frames before (the last
    magnitude, the phase advanced as much as it last advanced)."""

    def __init__(self) -> None:
        self.magnitude: np.ndarray | None = None
        self.phasors: np.ndarray | None = None  # the last two frames'

    def __call__(self, spectra: np.ndarray) -> np.ndarray:
        spectra = spectra.astype(np.complex64)
        magnitude = np.abs(spectra)
        # Unit phasors instead of angles: e^{i(p - 2 p1 + p2)} is
        # u · conj(u1)² · u2, with no trigonometry; a silent bin has
        # phase 0, as Essentia's atan2 gives it.
        phasor = np.divide(
            spectra, magnitude, out=np.ones_like(spectra),
            where=magnitude > 0,
        )  # fmt: skip
        bins = spectra.shape[1]
        before = (
            np.ones((2, bins), np.complex64)
            if self.phasors is None
            else self.phasors
        )
        last = (
            np.zeros((1, bins), np.float32)
            if self.magnitude is None
            else self.magnitude
        )
        phasors = np.vstack([before, phasor])
        previous = np.vstack([last, magnitude[:-1]])
        advance = np.conj(phasors[1:-1])
        advance *= advance
        advance *= phasors[:-2]
        advance *= spectra
        # A constant phase offset per bin (zero-phase windowing) cancels.
        values: np.ndarray = np.abs(previous - advance).sum(
            axis=1, dtype=np.float64
        )
        self.magnitude = magnitude[-1:]
        self.phasors = phasors[-2:]
        return values


class StoredPipeline(Pipeline):
    """What the plugin stores, and nothing else (see the module)."""

    def extract(
        self, path: str, groups: tuple[str, ...], dump: str | None
    ) -> dict[str, Any]:
        es = self.es
        stereo, rate, *_ = es.AudioLoader(filename=path)()
        if len(stereo) == 0:
            raise RuntimeError("no audio samples could be decoded")
        loudness = ebu_r128(stereo, rate)
        length = len(stereo) / rate
        mono = stereo[:, 0] + stereo[:, 1]
        mono *= np.float32(0.5)
        # The rest needs the mono signal only: a long file's stereo
        # samples are let go before the frames are cut.
        del stereo
        if rate != SAMPLE_RATE:
            mono = es.Resample(
                inputSampleRate=rate, outputSampleRate=SAMPLE_RATE
            )(mono)
        # A dot product: no float64 copy of a long file's signal.
        if np.sqrt(float(np.dot(mono, mono)) / len(mono)) < SILENCE_RMS:
            raise AnalysisError(SILENT)
        values: dict[str, Any] = {
            LENGTH: length,
            "lowlevel.loudness_ebu128.integrated": loudness.integrated,
            "lowlevel.loudness_ebu128.loudness_range": loudness.loudness_range,
            "lowlevel.dynamic_complexity": es.DynamicComplexity(
                sampleRate=SAMPLE_RATE
            )(mono)[0],
        }
        extra: dict[str, Any] = {}
        values |= self._beats(mono, extra)
        values |= self._onsets(mono, extra)
        tonal, chroma = self._tonal(mono, extra)
        values |= tonal
        values |= self._felt_tempo(values["rhythm.bpm"], chroma, extra)
        if dump:
            with open(dump, "w", encoding="utf-8") as out:
                json.dump(nested(values | extra), out, indent=2)
        return values

    def _beats(self, mono: np.ndarray, extra: dict[str, Any]) -> dict[str, Any]:
        """``RhythmExtractor2013(method="degara")``'s tempo and beats, and
        the spectral centroid, from the 2048/1024 Hann spectra."""
        es = self.es
        size, hop = 2048, 1024
        window = essentia_window("hann", size)
        weights = _equal_loudness_power(size)
        hertz = np.linspace(0, SAMPLE_RATE / 2, size // 2 + 1)
        onset = ComplexDomain()
        detection, centroids = [], []
        # A frame's own mean power, from its windowed spectrum (Parseval).
        to_power = 2 / size / float(np.sum(window**2))
        for chunk in frames(mono, size, hop, centred=False):
            spectra = np.fft.rfft(chunk * window, axis=1)
            detection.append(onset(spectra))
            power = (spectra.real**2 + spectra.imag**2) * weights
            total = power.sum(axis=1)
            centroid = np.divide(
                power @ hertz, total, out=np.zeros_like(total),
                where=total > 0,
            )  # fmt: skip
            # MusicExtractor adds white noise to silent frames, whose
            # centroid is half the Nyquist frequency: as ``music`` counts
            # them, so does this (a fade-out weighs the same in both).
            centroids.append(
                np.where(
                    total * to_power < SILENT_POWER, hertz[-1] / 2, centroid
                )
            )
        ticks = np.asarray(
            es.TempoTapDegara(sampleRateODF=SAMPLE_RATE / hop, resample="x2")(
                np.concatenate(detection).astype(np.float32)
            )
        )
        extra["rhythm.beats_position"] = ticks
        return beat_tempo(self.es, ticks) | {
            "rhythm.danceability": es.Danceability()(mono)[0],
            "lowlevel.spectral_centroid.mean": float(
                np.mean(np.concatenate(centroids))
            ),
        }

    def _onsets(
        self, mono: np.ndarray, extra: dict[str, Any]
    ) -> dict[str, Any]:
        """``OnsetRate``'s rate from the 1024/512 Hann spectra."""
        size, hop = 1024, 512
        window = essentia_window("hann", size)
        # Essentia's HFC (Brossier): magnitude times frequency.
        hertz = np.arange(size // 2 + 1) * (SAMPLE_RATE / 2) / (size // 2)
        onset = ComplexDomain()
        hfc, complex_domain = [], []
        for chunk in frames(mono, size, hop, centred=False):
            spectra = np.fft.rfft(chunk * window, axis=1)
            hfc.append(np.abs(spectra) @ hertz)
            complex_domain.append(onset(spectra))
        detections = np.vstack(
            [np.concatenate(hfc), np.concatenate(complex_domain)]
        ).astype(np.float32)
        times = self.es.Onsets(frameRate=SAMPLE_RATE / hop)(
            detections, np.ones(2, np.float32)
        )
        extra["rhythm.onset_times"] = times
        return {"rhythm.onset_rate": len(times) / (len(mono) / SAMPLE_RATE)}

    def _felt_tempo(
        self, bpm: float, chroma: np.ndarray, extra: dict[str, Any]
    ) -> dict[str, Any]:
        """The tempo and beats at the felt beat (``felt_tempo``)."""
        ticks = np.asarray(extra["rhythm.beats_position"])
        kept = felt_ticks(
            bpm, ticks, len(extra["rhythm.onset_times"]),
            pitch_classes(chroma), TONAL_HOP / SAMPLE_RATE,
        )  # fmt: skip
        if len(kept) == len(ticks):
            return {}
        extra["rhythm.beats_position"] = kept
        return beat_tempo(self.es, kept)

    def _tonal(
        self, mono: np.ndarray, extra: dict[str, Any]
    ) -> tuple[dict[str, Any], np.ndarray]:
        """The tuning (``tuning``) and the HPCP as ``MusicExtractor``
        computes it (4096/2048 Blackman-Harris frames), and the stored
        key; the HPCP frames."""
        es = self.es
        size, hop = 4096, TONAL_HOP
        window = essentia_window("blackmanharris62", size)
        key_peaks = es.SpectralPeaks(
            maxPeaks=60, magnitudeThreshold=1e-5, minFrequency=20,
            maxFrequency=3500, orderBy="magnitude",
        )  # fmt: skip
        tuning = TuningHistogram(hop)
        kept = []
        for chunk in frames(mono, size, hop, centred=True):
            spectra = np.abs(np.fft.rfft(chunk * window, axis=1))
            tuning.add(spectra)
            for spectrum in spectra.astype(np.float32):
                kept.append(key_peaks(spectrum))
        # The HPCP is tuned to the whole file's tuning, known only now.
        tuning_frequency = tuning.frequency()
        hpcp = es.HPCP(
            size=36, referenceFrequency=tuning_frequency, bandPreset=False,
            minFrequency=20, maxFrequency=3500, weightType="cosine",
            nonLinear=False, windowSize=1.0,
        )  # fmt: skip
        chroma = np.array([hpcp(*peaks) for peaks in kept])
        best = key_of(
            key_extractor(es, mono, self.profile.key_profile, tuning_frequency),
            hpcp_key(es, chroma),
            chroma,
        )
        extra["tonal.hpcp.mean"] = chroma.mean(axis=0)
        return {
            "tonal.key.key": best.key,
            "tonal.key.scale": best.scale,
            "tonal.key.strength": best.strength,
            "tonal.tuning_frequency": tuning_frequency,
        }, chroma
