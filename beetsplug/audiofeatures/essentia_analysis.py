"""Essentia as the runner drives it: what a track needs (descriptor
groups, classifiers, a dump), the worker's job, and storing a result."""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from beets.util import displayable_path

from beets_audiofeatures.essentia.descriptors import (
    BY_FIELD,
    GROUPS,
    descriptors_for,
    method_field,
)
from beets_audiofeatures.essentia.extraction import (
    AnalysisJob,
    AnalysisResult,
    Analyzer,
    essentia_report,
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
from .library_query import audio_fingerprint, dump_path

if TYPE_CHECKING:
    from beets.library import Item, Library


@dataclass(frozen=True)
class Work:
    """What one track needs from a run."""

    groups: tuple[str, ...]  # descriptor groups to compute
    classify: bool  # run the trained classifiers
    dump: bool = False  # computed again only for --dump

    def __bool__(self) -> bool:
        return bool(self.groups or self.classify)

    def describe(self) -> str:
        parts = list(self.groups) + (["classifiers"] if self.classify else [])
        return ", ".join(parts) + (" (for --dump)" if self.dump else "")


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


def same_audio(item: Item) -> bool:
    """Whether the values were computed from the audio the file holds now
    (as far as beets knows; tracks analysed before 0.2 count as same)."""
    analysed = own(item, "essentia_audio")
    return analysed is None or analysed == audio_fingerprint(item)


def stale_groups(item: Item, settings: EssentiaSettings) -> tuple[str, ...]:
    """The profile's descriptor groups the track lacks or holds from
    another method (all of them with ``force``)."""
    profile = settings.profile
    if settings.force or not same_audio(item):
        return profile.groups
    return tuple(
        group
        for group in profile.groups
        if stored_method(item, group) != profile.method(group, settings.version)
    )


def needs_classifiers(item: Item, settings: EssentiaSettings) -> bool:
    return settings.classifiers is not None and (
        settings.force
        or own(item, "essentia_classifiers") != settings.classifier_id
        or not same_audio(item)
    )


def work_for(item: Item, settings: EssentiaSettings, lib: Library) -> Work:
    groups = stale_groups(item, settings)
    classify = needs_classifiers(item, settings)
    if groups and settings.profile.extractor != "light":
        groups = settings.profile.groups  # one pass computes them all
    dump = settings.dump
    if dump and not os.path.exists(dump_path(item, lib, dump)):
        # --dump promises a file per track: a current track without one
        # is analysed again for it.
        return Work(settings.profile.groups, classify, dump=not groups)
    return Work(groups, classify)


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
    ) -> None:
        self.settings = settings
        self.lib = lib
        self.log = log
        self.write = write
        self._scratch: str | None = None
        self.method = f"with profile {settings.profile.name}"

    def needs(self, item: Item) -> Work:
        return work_for(item, self.settings, self.lib)

    def describe(self, need: Work) -> str:
        fields = [d.field for d in descriptors_for(need.groups)]
        return need.describe() + (f": {', '.join(fields)}" if fields else "")

    def task(self, item: Item, need: Work) -> AnalysisJob:
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
            for group in result.groups:
                for desc in descriptors_for([group]):
                    if desc.field not in values and desc.field in item:
                        del item[desc.field]  # no longer measured
                item[method_field(group)] = settings.profile.method(
                    group, settings.version
                )
            item["essentia_analyzed"] = time.time()
            item["essentia_audio"] = audio_fingerprint(item)
            item["essentia_profile"] = settings.profile.name
            item["essentia_version"] = settings.version
            if svm := settings.profile.svm_models:
                item["essentia_svm_models"] = f"svm: {', '.join(svm)}"
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
                item.store()  # the file's new mtime
        if result.dump_error:
            tally.note("dump failed")
            self.log.error("{}: {}", shown, result.dump_error)

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
