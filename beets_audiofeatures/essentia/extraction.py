"""Essentia analysis of one audio file, free of beets.

An :class:`Analyzer` lives in a worker process: it imports Essentia once,
builds the profile's pipeline once and then turns :class:`AnalysisJob`
(a path) into :class:`AnalysisResult` (plain field values). Every failure
of a file is an :class:`AnalysisError` whose message is the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import yaml

from ..atomic_files import atomic_write
from ..audio_files import AudioFileError, check_audio_file, truncation_reason
from ..errors import SetupError, TrackError
from ..transcode import TranscodeError, needs_transcode, transcode_to_wav
from .classifiers import ClassifierError, Classifiers, ModelFiles
from .descriptors import GROUPS, MEASURED, Kind, read_descriptors
from .key_estimation import hpcp_key, key_extractor, most_confident
from .profiles import Profile

LENGTH = "metadata.audio_properties.length"

#: Below these levels a file is taken for silence (dithered digital
#: silence included), which no descriptor describes meaningfully.
SILENCE_RMS = 1e-4  # -80 dBFS
SILENCE_LUFS = -70.0  # EBU R128's absolute gate
SILENT = "the audio is silent"


class AnalysisError(TrackError):
    """One file could not be analysed; the message is the reason."""


class EssentiaMissingError(SetupError, ImportError):
    """The ``essentia`` module cannot be imported."""


def import_essentia() -> ModuleType:
    """Import ``essentia.standard`` quietly (its INFO log goes to stdout)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import essentia
    except ImportError as exc:
        raise EssentiaMissingError(
            "Essentia is not installed: pip install --pre essentia"
        ) from exc
    essentia.log.infoActive = False
    import essentia.standard as es

    module: ModuleType = es
    return module


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
        best = most_confident(
            key_extractor(self.es, mono, self.profile.key_profile),
            None if hpcp is None else hpcp_key(self.es, hpcp),
        )
        pool.set("tonal.key.key", best.key)
        pool.set("tonal.key.scale", best.scale)
        pool.set("tonal.key.strength", best.strength)

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
            raise RuntimeError(SILENT)

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
        estimate = key_extractor(es, mono, self.profile.key_profile)
        key, scale, strength = estimate.key, estimate.scale, estimate.strength
        tuning = es.TuningFrequencyExtractor()(mono)
        # The key under its profile's name too, as MusicExtractor has it.
        named = f"tonal.key_{self.profile.key_profile}"
        extra[f"{named}.key"] = key
        extra[f"{named}.scale"] = scale
        extra[f"{named}.strength"] = strength
        return {
            "tonal.key.key": key,
            "tonal.key.scale": scale,
            "tonal.key.strength": strength,
            "tonal.tuning_frequency": float(np.mean(tuning)),
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


PIPELINES: dict[str, type[Pipeline]] = {
    "music": MusicPipeline,
    "freesound": FreesoundPipeline,
    "light": LightPipeline,
}


@dataclass(frozen=True)
class AnalysisJob:
    path: bytes  # absolute
    expected_length: float = 0.0  # seconds, from the tags; 0 if unknown
    dump: bytes | None = None  # where to save the full output as JSON
    transcode: bool = False  # decode through ffmpeg first
    descriptors: bool = True  # run the profile's extractor
    #: the descriptor groups wanted (the light profiles compute only
    #: these; the extractors compute all of theirs anyway)
    groups: tuple[str, ...] = GROUPS
    classify: bool = False  # run the trained classifiers
    max_seconds: float = 0  # analyse at most this much (0: all)

    @property
    def too_long(self) -> bool:
        return 0 < self.max_seconds < self.expected_length


@dataclass(frozen=True)
class AnalysisResult:
    values: dict[str, Any]
    length: float
    transcoded: bool
    #: why the ``--dump`` file could not be written (the values are fine)
    dump_error: str | None = None
    #: the descriptor groups the values cover
    groups: tuple[str, ...] = field(default=GROUPS)


@dataclass(frozen=True)
class ClassifierSpec:
    """The trained classifiers a worker loads (picklable)."""

    files: ModelFiles
    route: str
    top: int


class Analyzer:
    """Analyses files with one profile; one instance per worker process."""

    def __init__(
        self,
        profile: Profile,
        workdir: str,
        classifiers: ClassifierSpec | None = None,
    ):
        self.profile = profile
        # Workers share the run's scratch folder; each keeps to its own.
        self.workdir = Path(workdir) / uuid.uuid4().hex
        self.workdir.mkdir(parents=True)
        es = import_essentia()
        try:
            self.pipeline = PIPELINES[profile.extractor](
                profile, es, self.workdir
            )
        except RuntimeError as exc:
            raise ValueError(
                f"profile {profile.name}: {essentia_reason(exc)}"
            ) from exc
        self.classifiers = None
        if classifiers is not None:
            try:
                self.classifiers = Classifiers(
                    es, classifiers.files, classifiers.route, classifiers.top
                )
            except RuntimeError as exc:  # Essentia refused a model file
                raise ClassifierError(essentia_reason(exc)) from exc

    def __call__(self, job: AnalysisJob) -> AnalysisResult:
        path = os.fsdecode(job.path)
        try:
            check_audio_file(job.path)  # a FIFO would stall the decoder
        except AudioFileError as exc:
            raise AnalysisError(str(exc)) from None
        # A long file is cut by ffmpeg first: Essentia holds a whole
        # decoded file in memory (2 hours of audio take gigabytes).
        if job.transcode or job.too_long or needs_transcode(job.path):
            return self._via_ffmpeg(job)
        try:
            return self._analyse(path, job, transcoded=False)
        except RuntimeError as exc:
            reason = essentia_reason(exc)
            if "silent" in reason:
                raise AnalysisError(reason) from exc
            try:
                return self._via_ffmpeg(job)
            except (AnalysisError, TranscodeError) as retry:
                raise AnalysisError(
                    f"{reason} (through ffmpeg: {retry})"
                ) from exc

    def _groups(self, job: AnalysisJob) -> tuple[str, ...]:
        if not job.descriptors:
            return ()
        if self.profile.extractor != "light":
            return self.profile.groups  # one pass computes them all
        return tuple(g for g in self.profile.groups if g in job.groups)

    def _analyse(
        self, path: str, job: AnalysisJob, transcoded: bool
    ) -> AnalysisResult:
        values: dict[str, Any] = {}
        length = 0.0
        groups = self._groups(job)
        dump_error = None
        if groups:
            # The dump is written in the worker's scratch folder and moved
            # into place at the end: a dump folder that cannot be written
            # costs the dump, never the analysis.
            scratch = self.workdir / f"{uuid.uuid4().hex}.json"
            try:
                pool = self.pipeline.extract(
                    path, groups, str(scratch) if job.dump else None
                )
                values, length = self._checked(pool, job, groups)
                if job.dump:
                    dump_error = publish_dump(scratch, os.fsdecode(job.dump))
            finally:
                scratch.unlink(missing_ok=True)
        if job.classify and self.classifiers is not None:
            values |= self.classifiers(self.classifiers.load(path))
        return AnalysisResult(values, length, transcoded, dump_error, groups)

    def _via_ffmpeg(self, job: AnalysisJob) -> AnalysisResult:
        wav = self.workdir / f"{uuid.uuid4().hex}.wav"
        try:
            try:
                transcode_to_wav(
                    job.path,
                    wav,
                    job.max_seconds if job.too_long else 0,
                    job.expected_length,
                )
            except TranscodeError as exc:
                raise AnalysisError(
                    f"ffmpeg could not decode it: {exc}"
                ) from exc
            try:
                return self._analyse(str(wav), job, transcoded=True)
            except RuntimeError as exc:
                raise AnalysisError(essentia_reason(exc)) from exc
        finally:
            wav.unlink(missing_ok=True)

    def _checked(
        self, pool: dict[str, Any], job: AnalysisJob, groups: tuple[str, ...]
    ) -> tuple[dict[str, Any], float]:
        """The descriptors of a pool, unless it shows silence or a
        truncated file."""
        loudness = pool.get("lowlevel.loudness_ebu128.integrated")
        if loudness is not None and not loudness > SILENCE_LUFS:
            raise AnalysisError(f"{SILENT} (below {SILENCE_LUFS:.0f} LUFS)")
        length = float(pool.get(LENGTH, 0.0))
        expected = job.max_seconds if job.too_long else job.expected_length
        if reason := truncation_reason(length, expected):
            raise AnalysisError(reason)
        return (
            read_descriptors(pool, groups, self.profile.min_key_strength),
            length,
        )


def publish_dump(scratch: Path, target: str) -> str | None:
    """Move a finished dump into place; the reason if that fails."""
    try:  # copied: the dump folder may be on another disk
        with open(scratch, "rb") as source, atomic_write(target) as out:
            shutil.copyfileobj(source, out)
    except OSError as exc:
        where = exc.filename or target
        return f"could not write the dump {where}: {exc.strerror or exc}"
    return None
