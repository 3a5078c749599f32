"""Essentia analysis of one audio file, free of beets.

An :class:`Analyzer` lives in a worker process: it imports Essentia once,
builds the profile's pipeline once and then turns :class:`AnalysisJob`
(a path) into :class:`AnalysisResult` (plain field values). Every failure
of a file is an :class:`AnalysisError` whose message is the reason.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ..atomic_files import atomic_write
from ..audio_files import (
    AudioFileError,
    check_audio_file,
    decode_timeout,
    truncation_reason,
)
from ..errors import SetupError
from ..scratch import PREFIX, remove_scratch, scratch_folder
from ..transcode import TranscodeError, needs_transcode, transcode_to_wav
from ..version import essentia_installed, plugin_version
from .classifiers import (
    Classifiers,
)
from .descriptors import GROUPS, read_descriptors
from .heads import (
    ClassifierError,
    ModelFiles,
)
from .pipelines import (
    LENGTH,
    SILENCE_LUFS,
    SILENT,
    AnalysisError,
    Pipeline,
    essentia_reason,
)
from .pipelines import PIPELINES as SINGLE_PIPELINES
from .profiles import Profile
from .stored import StoredPipeline

#: Each profile's pipeline, by the profile's ``extractor``.
PIPELINES: dict[str, type[Pipeline]] = {
    "stored": StoredPipeline,
    **SINGLE_PIPELINES,
}


class EssentiaMissingError(SetupError, ImportError):
    """The ``essentia`` module cannot be imported."""


def essentia_distribution() -> str:
    """The installed Essentia distribution and its version, without
    importing it (``essentia 2.1b6.dev1389``); empty when there is none."""
    found = essentia_installed()
    return " ".join(found) if found else ""


def essentia_report() -> dict[str, str]:
    """What a cluster worker must share with the coordinator."""
    return {
        "beets-audiofeatures": plugin_version(),
        "essentia": essentia_distribution(),
    }


def import_essentia() -> ModuleType:
    """Import ``essentia.standard`` quietly (its INFO log goes to stdout)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import essentia
    except ImportError as exc:
        raise EssentiaMissingError(
            "Essentia is not installed: pip install "
            "'beets-audiofeatures[essentia]'"
        ) from exc
    essentia.log.infoActive = False
    import essentia.standard as es

    module: ModuleType = es
    return module


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


#: An analysis may take this long whatever the length (a loaded machine,
#: the classifiers' first call) ...
ANALYSIS_TIME_BASE = 20.0
#: ... plus this many seconds per second of audio: a healthy analysis
#: runs at several times real time even on a loaded machine; one that
#: takes longer spins on a damaged file (MusicExtractor on a garbled
#: WavPack file never ends).
ANALYSIS_TIME_PER_SECOND = 1.0
#: The audio assumed when the library knows no length.
UNKNOWN_LENGTH = 3600.0


def analysis_time_limit(job: AnalysisJob) -> float:
    """Seconds a worker may spend on ``job`` before it is stopped."""
    seconds = job.max_seconds if job.too_long else job.expected_length
    if seconds <= 0:
        seconds = job.max_seconds or UNKNOWN_LENGTH
    limit = ANALYSIS_TIME_BASE + ANALYSIS_TIME_PER_SECOND * seconds
    if job.transcode or job.too_long or needs_transcode(job.path):
        limit += decode_timeout(seconds)  # ffmpeg decodes it first
    return limit


def timeout_reason(limit: float) -> str:
    """Why a job that ran out of time failed (one line)."""
    return f"Essentia did not finish within {limit:.0f} s (a damaged file?)"


def retried_reason(first: str, then: str) -> str:
    """Why a job failed that ran out of time and then failed through
    ffmpeg too."""
    return f"{first}; through ffmpeg: {then}"


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
        workdir: str | None,
        classifiers: ClassifierSpec | None = None,
    ):
        self.profile = profile
        # Workers share the run's scratch folder, removed by the run;
        # each keeps to a folder of its own in it.
        if workdir:
            self.workdir = Path(workdir) / f"worker-{uuid.uuid4().hex}"
            self.workdir.mkdir(parents=True)
        elif (dask_folder := dask_worker_directory()) is not None:
            # Dask removes its worker's directory when the worker closes,
            # and purges that of a killed worker: nothing is left behind.
            self.workdir = dask_folder / f"{PREFIX}{uuid.uuid4().hex}"
            self.workdir.mkdir(parents=True)
        else:  # a folder of its own, removed with this analyser
            self.workdir = scratch_folder("analyzer")
            weakref.finalize(self, remove_scratch, self.workdir)
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
        except RuntimeError as exc:  # Essentia's decoder; ffmpeg may do
            reason = essentia_reason(exc)
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


def dask_worker_directory() -> Path | None:
    """The local directory of the Dask worker this code runs in; None
    outside one (Dask is not imported for the question)."""
    if "distributed" not in sys.modules:
        return None
    from distributed import get_worker

    try:
        return Path(get_worker().local_directory)
    except ValueError:  # not in a worker
        return None


def publish_dump(scratch: Path, target: str) -> str | None:
    """Move a finished dump into place; the reason if that fails."""
    try:  # copied: the dump folder may be on another disk
        with open(scratch, "rb") as source, atomic_write(target) as out:
            shutil.copyfileobj(source, out)
    except OSError as exc:
        where = exc.filename or target
        return f"could not write the dump {where}: {exc.strerror or exc}"
    return None
