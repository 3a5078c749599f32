"""Essentia as the runner drives it: what a track needs (descriptor
groups, classifiers, a dump), the worker's job, and storing a result."""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from beets.util import displayable_path

from beets_audiofeatures.audio_files import (
    AudioCheck,
    FileIdentity,
    check_identity,
    file_identity,
)
from beets_audiofeatures.essentia.descriptors import (
    BY_FIELD,
    GROUPS,
    MEASURED,
    Kind,
    descriptors_for,
    method_field,
)
from beets_audiofeatures.essentia.extraction import (
    AnalysisJob,
    AnalysisResult,
    Analyzer,
    analysis_time_limit,
    essentia_report,
    retried_reason,
    timeout_reason,
)
from beets_audiofeatures.essentia.heads import (
    file_tags,
)
from beets_audiofeatures.essentia.pipelines import AnalysisError
from beets_audiofeatures.essentia.profiles import Profile
from beets_audiofeatures.process_pool import WorkerPool
from beets_audiofeatures.runner import Job, RemoteWork, Tally
from beets_audiofeatures.scratch import remove_scratch, scratch_folder

from .albums import own
from .essentia_settings import EssentiaSettings, described_heads
from .library_query import audio_fingerprint, dump_path, item_id

if TYPE_CHECKING:
    from beets.library import Item, Library


#: The file the values were computed from (``FileIdentity``): its size
#: and time make the next plan one ``stat``; its audio digest tells a
#: rewritten file (tags) from new audio.
FILE_FIELD = "essentia_file"
#: The group fields the last analysis looked for and could not store
#: (a key too weak to store, a non-finite loudness): absent, yet current.
UNMEASURED_FIELD = "essentia_unmeasured"
#: The descriptors that fill a core field (``bpm``, ``initial_key``), and
#: that field.
FILLING = tuple((d, d.core_field) for d in MEASURED if d.core_field)


@dataclass(frozen=True)
class Work:
    """What one track needs from a run."""

    groups: tuple[str, ...]  # descriptor groups to compute
    classify: bool  # run the trained classifiers
    dump: bool = False  # computed again only for --dump
    why: str = ""  # why current values are computed again, for -p
    #: empty core fields to fill from the stored values, without decoding
    refill: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.groups or self.classify or self.refill)

    @property
    def analyses(self) -> bool:
        """Whether it takes a decode (not only a refill)."""
        return bool(self.groups or self.classify)

    def describe(self) -> str:
        parts = list(self.groups) + (["classifiers"] if self.classify else [])
        return ", ".join(parts) + (" (for --dump)" if self.dump else "")


@dataclass(frozen=True)
class AudioState:
    """Whether a track's values describe the audio its file holds now."""

    same: bool
    why: str = ""  # why not
    #: the file's identity to record without analysing (a rewritten file
    #: with the same audio, or values stored before identities were)
    record: FileIdentity | None = None


def stored_method(item: Item, group: str) -> Any:
    """What computed the track's ``group`` values, if anything did."""
    method = own(item, method_field(group))
    if method is not None:
        return method
    # Tracks analysed before 0.2 recorded one profile per track.
    legacy = own(item, "essentia_profile")
    if legacy is None or own(item, "essentia_analyzed") is None:
        return None
    parts = legacy.split(",")
    light = all(part in GROUPS for part in parts)
    if light and group not in parts:
        return None
    then = Profile(legacy, "light" if light else legacy)
    return then.method(group, own(item, "essentia_version") or "?")


def audio_state(item: Item) -> AudioState:
    """Whether the values were computed from the audio the file holds
    now: beets' audio columns first (free), then the file recorded with
    them (a ``stat``; a digest of the audio only when the file was
    rewritten). Values stored before files were recorded count as the
    same audio until their audio columns change; their file is recorded
    now."""
    present = item.keys(with_album=False)
    if "essentia_audio" in present:
        if own(item, "essentia_audio") != audio_fingerprint(item):
            return AudioState(False, "new audio")
    elif "essentia_analyzed" not in present:
        return AudioState(True)  # nothing stored to compare
    recorded = (
        FileIdentity.parse(own(item, FILE_FIELD))
        if FILE_FIELD in present
        else None
    )
    if recorded is None:
        try:
            return AudioState(True, record=file_identity(item.path))
        except OSError:
            return AudioState(True)
    check, now = check_identity(recorded, item.path)
    if check is AudioCheck.NEW_AUDIO:
        return AudioState(False, "new audio")
    return AudioState(True, record=now)


def unmeasured(item: Item) -> set[str]:
    return set(filter(None, (own(item, UNMEASURED_FIELD) or "").split(",")))


def missing_fields(
    item: Item, group: str, present: Collection[str]
) -> list[str]:
    """The group's fields the track lacks (a ``beet modify essentia_bpm!``)
    that its analysis did store. Tracks analysed before this was recorded
    may lack the key (too weak to store) and nothing else. ``present``:
    the track's own fields (reading each value would cost more)."""
    recorded = FILE_FIELD in present
    absent = unmeasured(item) if UNMEASURED_FIELD in present else set()
    return [
        desc.field
        for desc in descriptors_for([group])
        if desc.field not in present
        and desc.field not in absent
        and (recorded or desc.kind is not Kind.KEY)
    ]


def stale_groups(
    item: Item, settings: EssentiaSettings, audio: AudioState | None = None
) -> tuple[tuple[str, ...], str]:
    """The profile's descriptor groups the track lacks, holds from
    another method or with fields missing, or all of them for new audio
    or ``force``; and why, in a few words (empty for never analysed)."""
    profile = settings.profile
    audio = audio or audio_state(item)
    if settings.force:
        return profile.groups, ""
    if not audio.same:
        return profile.groups, audio.why
    stale = []
    reasons = []
    present = item.keys(with_album=False)
    for group in profile.groups:
        method = stored_method(item, group)
        if method not in profile.current_methods(group, settings.version):
            stale.append(group)
            if method is not None:
                reasons.append(f"{group} by another method")
        elif missing := missing_fields(item, group, present):
            stale.append(group)
            reasons.append(f"{', '.join(missing)} missing")
    return tuple(stale), "; ".join(reasons)


def needs_classifiers(
    item: Item, settings: EssentiaSettings, audio: AudioState | None = None
) -> bool:
    return settings.classifiers is not None and (
        settings.force
        or own(item, "essentia_classifiers") != settings.classifier_id
        or not (audio or audio_state(item)).same
    )


def refill_fields(
    item: Item, settings: EssentiaSettings, stale: tuple[str, ...]
) -> tuple[str, ...]:
    """The empty core fields (``bpm``, ``initial_key``) that current
    values fill (``beet update`` read them from a file they were never
    written to)."""
    if not settings.fill_core_fields or settings.force:
        return ()
    present = item.keys(with_album=False)
    return tuple(
        core
        for desc, core in FILLING
        if desc.group not in stale
        and desc.group in settings.profile.groups
        and desc.field in present
        and not item.get(core, with_album=False)
    )


def work_for(
    item: Item, settings: EssentiaSettings, lib: Library, audio: AudioState
) -> Work:
    groups, why = stale_groups(item, settings, audio)
    classify = needs_classifiers(item, settings, audio)
    if groups and settings.profile.extractor != "light":
        groups = settings.profile.groups  # one pass computes them all
    refill = refill_fields(item, settings, groups)
    dump = settings.dump
    if dump and not os.path.exists(dump_path(item, lib, dump)):
        # --dump promises a file per track: a current track without one
        # is analysed again for it.
        return Work(settings.profile.groups, classify, dump=not groups)
    return Work(groups, classify, why=why, refill=refill)


def _retry_through_ffmpeg(job: AnalysisJob) -> AnalysisJob | None:
    # A file that kills Essentia's own decoder (Opus in .ogg crashes
    # AudioLoader) gets one more try, decoded by ffmpeg.
    return None if job.transcode else replace(job, transcode=True)


class EssentiaAnalysis:
    """Descriptors and classifiers, computed in worker processes."""

    verb = "analysed"
    doing = "analysing"
    result = "its values are"
    batched = False  # each result is stored as soon as it is computed
    again = "the next beet essentia analyses it again"

    def __init__(
        self,
        settings: EssentiaSettings,
        lib: Library,
        log: Any,
        write: bool,
        settle: bool = False,
    ) -> None:
        self.settings = settings
        self.lib = lib
        self.log = log
        self.write = write
        #: refill core fields and record files while planning (a run
        #: that stores; never ``-p``)
        self.settle = settle
        self.refilled = 0
        self._scratch: str | None = None
        self._files: dict[int, FileIdentity] = {}
        self.method = f"with profile {settings.profile.name}"

    def needs(self, item: Item) -> Work:
        audio = audio_state(item)
        work = work_for(item, self.settings, self.lib, audio)
        if not self.settle:
            return work
        if work.refill or (audio.record and not work.analyses):
            self.settle_track(item, work, audio.record)
        return replace(work, refill=())

    def settle_track(
        self, item: Item, work: Work, record: FileIdentity | None
    ) -> None:
        """What a current track needs without a decode: its empty core
        fields filled from its values, its file recorded."""
        if record is not None:
            item[FILE_FIELD] = str(record)
        stored = {
            desc.field: own(item, desc.field)
            for desc in MEASURED
            if desc.core_field in work.refill
        }
        filled = self._fill_core(item, stored)
        with self.lib.transaction():
            item.store()
            if self.write and filled:
                item.try_write()
                self._record_rewrite(item)
                item.store()
        self.refilled += bool(filled)

    def describe(self, need: Work) -> str:
        if not need.analyses:
            return f"refill {', '.join(need.refill)}"
        fields = [d.field for d in descriptors_for(need.groups)]
        return (
            need.describe()
            + (f": {', '.join(fields)}" if fields else "")
            + (f" ({need.why})" if need.why else "")
        )

    def task(self, item: Item, need: Work) -> AnalysisJob:
        # The file as it is before its worker reads it: new audio that
        # lands during the analysis makes the values stale, never right.
        with contextlib.suppress(OSError):
            self._files[item_id(item)] = file_identity(item.path)
        dump = self.settings.dump
        # Absolute paths, resolved here: beets 2.14 hands out paths
        # relative to the library outside the main thread's context.
        return AnalysisJob(
            path=os.path.abspath(item.path),
            expected_length=float(item.length or 0.0),
            dump=dump_path(item, self.lib, dump) if dump else None,
            descriptors=bool(need.groups),
            groups=need.groups,
            classify=need.classify,
            max_seconds=self.settings.max_seconds,
        )

    def executor(self) -> WorkerPool[AnalysisJob, AnalysisResult]:
        self._scratch = str(scratch_folder("essentia"))
        factory = functools.partial(
            Analyzer,
            self.settings.profile,
            self._scratch,
            self.settings.classifiers,
        )
        return WorkerPool(
            factory,
            self.settings.jobs,  # started as work needs them
            expected=(AnalysisError,),
            retry_after_crash=_retry_through_ffmpeg,
            on_output=self._library_output,
            time_limit=analysis_time_limit,
            timeout_reason=timeout_reason,
            retried_reason=retried_reason,
        )

    def remote_work(self) -> RemoteWork[AnalysisJob, AnalysisResult]:
        """The analysis as cluster workers run it: each worker builds its
        own ``Analyzer`` once, in its own scratch folder."""
        settings = self.settings
        return RemoteWork(
            name=f"essentia (profile {settings.profile.name})",
            factory=functools.partial(
                Analyzer, settings.profile, None, settings.classifiers
            ),
            identity=essentia_report(),
            report=essentia_report,
            retry_after_crash=_retry_through_ffmpeg,
        )

    def _library_output(self, job: Job[AnalysisJob], text: str) -> None:
        for line in text.splitlines():
            self.log.debug("{}: {}", displayable_path(job.task.path), line)

    def close(self) -> None:
        if self._scratch is not None:
            remove_scratch(self._scratch)
            self._scratch = None

    def keep(
        self, item: Item, need: Work, result: AnalysisResult, tally: Tally
    ) -> None:
        """Put a result on its live track: a concurrent edit (``beet
        modify``) is neither undone in the database nor in the file."""
        settings = self.settings
        values = result.values
        item.update(values)
        if "tonal" in result.groups and "essentia_key" not in values:
            tally.note("keys too weak to store")
        if result.groups:
            absent = unmeasured(item)
            for group in result.groups:
                for desc in descriptors_for([group]):
                    absent.discard(desc.field)
                    if desc.field not in values:
                        absent.add(desc.field)
                        if desc.field in item:
                            del item[desc.field]  # no longer measured
                item[method_field(group)] = settings.profile.method(
                    group, settings.version
                )
            item["essentia_analyzed"] = time.time()
            item["essentia_audio"] = audio_fingerprint(item)
            if absent:
                item[UNMEASURED_FIELD] = ",".join(sorted(absent))
            elif UNMEASURED_FIELD in item:
                del item[UNMEASURED_FIELD]
            item["essentia_profile"] = settings.profile.name
            item["essentia_version"] = settings.version
            if svm := settings.profile.svm_models:
                item["essentia_svm_models"] = f"svm: {', '.join(svm)}"
        if file := self._files.pop(item_id(item), None):
            item[FILE_FIELD] = str(file)
        tags_changed = False
        if need.classify:
            item["essentia_classifiers"] = settings.classifier_id
            if settings.write_tags and settings.classifiers:
                tags = file_tags(
                    described_heads(settings.classifiers.files),
                    values,
                    settings.mood_threshold,
                )
                tags_changed = any(item.get(k) != v for k, v in tags.items())
                item.update(tags)
        filled = (
            self._fill_core(item, values) if settings.fill_core_fields else 0
        )
        if filled:
            tally.note("core fields filled", filled)
        shown = displayable_path(item.path)
        self.log.debug(
            "{}: {}",
            shown,
            ", ".join(f"{k}={v}" for k, v in sorted(values.items())),
        )
        with self.lib.transaction():
            item.store()
            if self.write and (filled or tags_changed):
                item.try_write()
                self._record_rewrite(item)
                item.store()  # the file's new mtime
        if result.dump_error:
            tally.note("dump failed")
            self.log.error("{}: {}", shown, result.dump_error)

    def _record_rewrite(self, item: Item) -> None:
        """Our own tag write leaves the audio as it was: the recorded
        file takes the new size and time (its digest is the same)."""
        recorded = FileIdentity.parse(own(item, FILE_FIELD))
        with contextlib.suppress(OSError):
            info = os.stat(item.path)
            if recorded is not None:
                item[FILE_FIELD] = str(
                    FileIdentity(
                        info.st_size, info.st_mtime_ns, recorded.digest
                    )
                )

    def _fill_core(self, item: Item, values: dict[str, Any]) -> int:
        """Fill beets' own ``bpm`` / ``initial_key`` from the values when
        they are empty (or with ``force``); how many changed."""
        changed = 0
        for name, value in values.items():
            core = BY_FIELD[name].core_field if name in BY_FIELD else None
            if core is None:
                continue
            if core == "bpm":
                value = round(value)
            current = item.get(core, with_album=False)
            if (self.settings.force or not current) and current != value:
                item[core] = value
                changed += 1
        return changed
