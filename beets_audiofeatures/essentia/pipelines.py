"""Essentia's pipelines: what runs on one decoded file for each kind of
profile (``MusicExtractor``, ``FreesoundExtractor``, or single
algorithms for the light profiles), giving flat descriptor values."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import yaml

from ..errors import TrackError
from .descriptors import MEASURED, Kind
from .felt_tempo import beat_tempo, felt_ticks, pitch_classes
from .key_estimation import (
    hpcp_key,
    key_extractor,
    key_of,
    semitones_off,
)
from .profiles import Profile
from .tuning import estimate_tuning

LENGTH = "metadata.audio_properties.length"

#: Below these levels a file is taken for silence (dithered digital
#: silence included), which no descriptor describes meaningfully.
SILENCE_RMS = 1e-4  # -80 dBFS
SILENCE_LUFS = -70.0  # EBU R128's absolute gate
SILENT = "the audio is silent"


class AnalysisError(TrackError):
    """One file could not be analysed; the message is the reason."""


def essentia_reason(exc: BaseException) -> str:
    """Essentia's message on one line, without the algorithm preamble."""
    text = " ".join(str(exc).split())
    return re.sub(r"^In \w+\.compute: ", "", text) or type(exc).__name__


def _wanted_paths() -> frozenset[str]:
    paths = {LENGTH}
    for desc in MEASURED:
        assert desc.source
        if desc.kind is Kind.KEY:
            paths.update(f"{desc.source}.{p}" for p in ("key", "scale"))
        else:
            paths.add(desc.source)
    return frozenset(paths)


WANTED_PATHS = _wanted_paths()


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    """Dotted pool paths as Essentia's nested JSON layout:
    ``{"rhythm.bpm": 120}`` becomes ``{"rhythm": {"bpm": 120}}``."""
    tree: dict[str, Any] = {}
    for path, value in sorted(flat.items()):
        *parents, leaf = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _plain(value)
    return tree


SAMPLE_RATE = 44100.0
#: The hop of the tonal frames (4096 samples long), as MusicExtractor's.
TONAL_HOP = 2048


class Pipeline(ABC):
    """One way of computing descriptors from a file."""

    def __init__(self, profile: Profile, es: ModuleType, workdir: Path):
        self.profile = profile
        self.es = es
        self.workdir = workdir

    @abstractmethod
    def extract(
        self, path: str, groups: tuple[str, ...], dump: str | None
    ) -> dict[str, Any]:
        """Descriptor paths to values for ``path`` (at least ``groups``);
        the full output, in Essentia's nested pool layout, to ``dump``.

        Raises ``RuntimeError`` (Essentia's own) when the file fails.
        """


class ExtractorPipeline(Pipeline):
    """Essentia's ready-made extractors, which fill an ``essentia.Pool``."""

    extractor: Any
    #: The extractor's own paths that the descriptor table names otherwise.
    renames: dict[str, str]

    def extract(
        self, path: str, groups: tuple[str, ...], dump: str | None
    ) -> dict[str, Any]:
        pool, frames = self.extractor(path)
        self.amend(pool, frames, path)
        if dump:
            self.es.YamlOutput(
                filename=dump, format="json", writeVersion=False
            )(pool)
        values = {}
        for name in pool.descriptorNames():
            canonical = self.renames.get(name, name)
            if canonical in WANTED_PATHS or name.startswith("highlevel."):
                values[canonical] = pool[name]
        return values

    def amend(self, pool: Any, frames: Any, path: str) -> None:
        """Add to the extractor's pool what it does not compute well."""


class MusicPipeline(ExtractorPipeline):
    def __init__(self, profile: Profile, es: ModuleType, workdir: Path):
        super().__init__(profile, es, workdir)
        kwargs: dict[str, Any] = dict(profile.stats)
        if profile.options:
            # Given as a file: the ``highlevel=`` argument is broken
            # upstream (MTG/essentia#1051), the profile route works.
            options_file = workdir / "profile.yaml"
            options_file.write_text(yaml.safe_dump(profile.options))
            kwargs["profile"] = str(options_file)
        self.extractor = es.MusicExtractor(**kwargs)
        if profile.options:
            self._check_options()
        self.renames = {}

    def amend(self, pool: Any, frames: Any, path: str) -> None:
        """The stored key (``tonal.key``) is the more confident of
        KeyExtractor's and the key of MusicExtractor's own HPCP frames
        (``key_estimation``); the extractor's keys (``key_edma``, …) stay
        in the dump."""
        mono = self.es.MonoLoader(filename=path, sampleRate=SAMPLE_RATE)()
        hpcp = (
            frames["tonal.hpcp"]
            if "tonal.hpcp" in frames.descriptorNames()
            else None
        )
        # The extractor's HPCP frames are on its own tuning estimate
        # (``raw``), up to 60 cents from 440 Hz: its key is raised by the
        # semitones between that and the track's (``tuning``).
        raw = float(pool["tonal.tuning_frequency"])
        tuning = estimate_tuning(mono)
        best = key_of(
            key_extractor(self.es, mono, self.profile.key_profile, tuning),
            None
            if hpcp is None
            else hpcp_key(self.es, hpcp, semitones_off(raw, tuning)),
            [] if hpcp is None else hpcp,
        )
        pool.set("tonal.tuning_frequency", tuning)
        self._felt_tempo(pool, hpcp)
        pool.set("tonal.key.key", best.key)
        pool.set("tonal.key.scale", best.scale)
        pool.set("tonal.key.strength", best.strength)

    def _felt_tempo(self, pool: Any, hpcp: Any) -> None:
        """The tempo and beats at the felt beat (``felt_tempo``), from the
        extractor's beats, onset rate and tonal frames (hop 2048); the
        tempo's confidence from those beats as every profile computes it
        (the extractor's own histogram weight is on another scale)."""
        if "rhythm.beats_position" not in pool.descriptorNames():
            return
        ticks = np.asarray(pool["rhythm.beats_position"])
        onsets = float(pool["rhythm.onset_rate"]) * float(
            pool["metadata.audio_properties.length"]
        )
        kept = felt_ticks(
            float(pool["rhythm.bpm"]), ticks, round(onsets),
            pitch_classes(np.zeros((0, 36)) if hpcp is None else hpcp),
            TONAL_HOP / SAMPLE_RATE,
        )  # fmt: skip
        tempo = beat_tempo(self.es, kept)
        weight = "rhythm.bpm_histogram_first_peak_weight"
        pool.set(weight, tempo.pop(weight))
        if len(kept) == len(ticks):
            return
        for name, value in tempo.items():
            pool.set(name, value)
        pool.remove("rhythm.beats_position")
        for tick in kept:
            pool.add("rhythm.beats_position", float(tick))

    def _check_options(self) -> None:
        """Run once on a short test tone: MusicExtractor reads its profile
        only when it first computes, and a bad value there would
        otherwise fail every file of the batch."""
        tone = self.workdir / "check.wav"
        seconds = np.arange(3 * 44100) / 44100
        signal = 0.5 * np.sin(2 * np.pi * 440 * seconds) * (seconds % 0.5 < 0.1)
        self.es.MonoWriter(filename=str(tone), format="wav")(
            signal.astype(np.float32)
        )
        try:
            self.extractor(str(tone))
        except RuntimeError as exc:
            reason = essentia_reason(exc)
            if re.search(r"Parameter|YamlInput|configur|Pool", reason):
                raise
        finally:
            tone.unlink(missing_ok=True)


class FreesoundPipeline(ExtractorPipeline):
    def __init__(self, profile: Profile, es: ModuleType, workdir: Path):
        super().__init__(profile, es, workdir)
        self.extractor = es.FreesoundExtractor()
        self.renames = {"tonal.tuning_frequency.mean": "tonal.tuning_frequency"}


class LightPipeline(Pipeline):
    """Single algorithms on one decode: several times faster than
    ``MusicExtractor``, same paths and, where the algorithm is the same,
    the same values."""

    def extract(
        self, path: str, groups: tuple[str, ...], dump: str | None
    ) -> dict[str, Any]:
        es = self.es
        stereo, rate, channels, *_ = es.AudioLoader(filename=path)()
        if len(stereo) == 0:
            raise RuntimeError("no audio samples could be decoded")
        mono = es.MonoMixer()(stereo, channels)
        if rate != SAMPLE_RATE:
            mono = es.Resample(
                inputSampleRate=rate, outputSampleRate=SAMPLE_RATE
            )(mono)
        if np.sqrt(np.mean(np.square(mono, dtype=np.float64))) < SILENCE_RMS:
            raise AnalysisError(SILENT)

        # Algorithms are built per file: several keep state between calls
        # (OnsetRate reports 0 on its second file), and building is cheap.
        values: dict[str, Any] = {LENGTH: len(stereo) / rate}
        # Frame-wise series only a dump shows (beats, onsets, HPCP, MFCC).
        extra: dict[str, Any] = {}
        if "rhythm" in groups:
            values.update(self._rhythm(mono, extra))
        if "tonal" in groups:
            values.update(self._tonal(mono, extra))
        if "lowlevel" in groups:
            values.update(self._lowlevel(stereo, rate, mono))
        if dump:
            extra |= self._frame_means(
                mono, hpcp="tonal" in groups, mfcc="lowlevel" in groups
            )
            with open(dump, "w", encoding="utf-8") as out:
                json.dump(nested(values | extra), out, indent=2)
        return values

    def _rhythm(
        self, mono: np.ndarray, extra: dict[str, Any]
    ) -> dict[str, Any]:
        es = self.es
        bpm, beats, _confidence, _estimates, intervals = es.RhythmExtractor2013(
            method="degara"
        )(mono)
        histogram = es.BpmHistogramDescriptors()(intervals)
        onsets, onset_rate = es.OnsetRate()(mono)
        extra["rhythm.beats_position"] = beats
        extra["rhythm.onset_times"] = onsets
        return {
            "rhythm.bpm": bpm,
            "rhythm.beats_count": len(beats),
            "rhythm.bpm_histogram_first_peak_weight": (
                histogram[1] if len(intervals) else 0.0
            ),
            "rhythm.danceability": es.Danceability()(mono)[0],
            "rhythm.onset_rate": onset_rate,
        }

    def _tonal(self, mono: np.ndarray, extra: dict[str, Any]) -> dict[str, Any]:
        es = self.es
        tuning = estimate_tuning(mono)
        estimate = key_extractor(es, mono, self.profile.key_profile, tuning)
        key, scale, strength = estimate.key, estimate.scale, estimate.strength
        # The key under its profile's name too, as MusicExtractor has it.
        named = f"tonal.key_{self.profile.key_profile}"
        extra[f"{named}.key"] = key
        extra[f"{named}.scale"] = scale
        extra[f"{named}.strength"] = strength
        return {
            "tonal.key.key": key,
            "tonal.key.scale": scale,
            "tonal.key.strength": strength,
            "tonal.tuning_frequency": tuning,
        }

    def _frames(self, signal: np.ndarray) -> Iterator[np.ndarray]:
        """Magnitude spectra of MusicExtractor's frames (2048, hop 1024)."""
        window = self.es.Windowing(type="blackmanharris62")
        spectrum = self.es.Spectrum()
        for frame in self.es.FrameGenerator(
            signal, frameSize=2048, hopSize=1024, startFromZero=True
        ):
            yield spectrum(window(frame))

    def _frame_means(
        self, mono: np.ndarray, hpcp: bool, mfcc: bool
    ) -> dict[str, Any]:
        """The mean HPCP (tonal) and MFCC (lowlevel) over the frames, in
        one pass over the spectra; only a dump shows them."""
        if not (hpcp or mfcc):
            return {}
        peaks = self.es.SpectralPeaks(
            orderBy="magnitude", magnitudeThreshold=1e-5, maxPeaks=60,
            minFrequency=20, maxFrequency=3500,
        )  # fmt: skip
        chroma = self.es.HPCP(size=36, referenceFrequency=440)
        cepstrum = self.es.MFCC()
        chromas, cepstra = [], []
        for spectrum in self._frames(mono):
            if hpcp:
                chromas.append(chroma(*peaks(spectrum)))
            if mfcc:
                cepstra.append(cepstrum(spectrum)[1])
        means: dict[str, Any] = {}
        if hpcp:
            means["tonal.hpcp.mean"] = (
                np.mean(chromas, axis=0) if chromas else np.zeros(36)
            )
        if mfcc:
            means["lowlevel.mfcc.mean"] = (
                np.mean(cepstra, axis=0) if cepstra else np.zeros(13)
            )
        return means

    def _lowlevel(
        self, stereo: np.ndarray, rate: float, mono: np.ndarray
    ) -> dict[str, Any]:
        es = self.es
        _m, _s, integrated, loudness_range = es.LoudnessEBUR128(
            sampleRate=rate
        )(stereo)
        # As MusicExtractor does: equal-loudness filtered power spectrum.
        centroid = es.Centroid(range=SAMPLE_RATE / 2)
        centroids = [
            centroid(spectrum**2)
            for spectrum in self._frames(es.EqualLoudness()(mono))
        ]
        complexity = es.DynamicComplexity(sampleRate=SAMPLE_RATE)
        dynamic_complexity = complexity(mono)[0]
        return {
            "lowlevel.loudness_ebu128.integrated": integrated,
            "lowlevel.loudness_ebu128.loudness_range": loudness_range,
            "lowlevel.dynamic_complexity": dynamic_complexity,
            "lowlevel.spectral_centroid.mean": float(np.mean(centroids)),
        }


#: The pipelines of this module; ``extraction.PIPELINES`` adds ``stored``.
PIPELINES: dict[str, type[Pipeline]] = {
    "music": MusicPipeline,
    "freesound": FreesoundPipeline,
    "light": LightPipeline,
}
