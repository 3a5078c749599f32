"""Essentia as the runner drives it: what a track needs (descriptor
groups, classifiers, a dump), the worker's job, and storing a result."""

from __future__ import annotations

import contextlib
import functools
import os
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from beets.util import displayable_path

from beets_audiofeatures.audio_files import (
    FileIdentity,
    file_identity,
)
from beets_audiofeatures.essentia.descriptors import (
    BY_FIELD,
    MEASURED,
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
from beets_audiofeatures.keys import parse_key, spell_key
from beets_audiofeatures.process_pool import WorkerPool
from beets_audiofeatures.runner import Job, RemoteWork, Tally
from beets_audiofeatures.scratch import remove_scratch, scratch_folder
from beetsplug.audiofeatures.analysis.albums import own
from beetsplug.audiofeatures.analysis.essentia_plan import (
    FILE_FIELD,
    KEY_FIELDS,
    UNMEASURED_FIELD,
    Work,
    audio_state,
    core_value,
    unmeasured,
    work_for,
)
from beetsplug.audiofeatures.library_query import (
    audio_fingerprint,
    dump_path,
    item_id,
)
from beetsplug.audiofeatures.settings.essentia import (
    EssentiaSettings,
    described_heads,
)

if TYPE_CHECKING:
    from beets.library import Item, Library
    from beets.logging import BeetsLogger


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
        log: BeetsLogger,
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
        self.respelled = 0
        #: files whose tags ``-w`` could not write
        self.unwritten = 0
        self._scratch: str | None = None
        self._files: dict[int, FileIdentity] = {}
        self.method = f"with profile {settings.profile.name}"

    def needs(self, item: Item) -> Work:
        audio = audio_state(item)
        work = work_for(item, self.settings, self.lib, audio)
        if not self.settle:
            return work
        if work.refill or work.respell or (audio.record and not work.analyses):
            self.settle_track(item, work, audio.record)
        return replace(work, refill=(), respell=())

    def settle_track(
        self, item: Item, work: Work, record: FileIdentity | None
    ) -> None:
        """What a current track needs without a decode: its empty core
        fields filled from its values, its keys re-spelt, its file
        recorded."""
        if record is not None:
            item[FILE_FIELD] = str(record)
        for name in work.respell:
            item[name] = spell_key(own(item, name), self.settings.key_spelling)
        stored = {
            desc.field: own(item, desc.field)
            for desc in MEASURED
            if desc.core_field in work.refill
        }
        filled = self._fill_core(item, stored)
        with self.lib.transaction():
            item.store()
            if self.write and filled:
                self._write_tags(item)
        self.refilled += bool(filled)
        self.respelled += bool(work.respell)

    def describe(self, need: Work) -> str:
        respell = (
            f"respell {', '.join(need.respell)} as {self.settings.key_spelling}"
            if need.respell
            else ""
        )
        if not need.analyses:
            refill = f"refill {', '.join(need.refill)}" if need.refill else ""
            return "; ".join(filter(None, (refill, respell)))
        fields = [d.field for d in descriptors_for(need.groups)]
        return (
            need.describe()
            + (f": {', '.join(fields)}" if fields else "")
            + (f" ({need.why})" if need.why else "")
            + (f"; {respell}" if respell else "")
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
        values = self._spelled(result.values)
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
                self._write_tags(item)
        if result.dump_error:
            tally.note("dump failed")
            self.log.error("{}: {}", shown, result.dump_error)

    def _spelled(self, values: dict[str, Any]) -> dict[str, Any]:
        """The values with their keys spelt as ``key_spelling`` asks (the
        core spells them with sharps)."""
        spelling = self.settings.key_spelling
        spelled = dict(values)
        for desc in KEY_FIELDS:
            if isinstance(value := values.get(desc.field), str):
                spelled[desc.field] = spell_key(value, spelling) or value
        return spelled

    def _key_tag(self, item: Item) -> dict[str, Any] | None:
        """The file's ``initial_key`` tag spelt as ``essentia_key`` is,
        when it names the same key: beets spells ``initial_key`` with
        sharps in its database, whatever the tag it was read from."""
        if not self.settings.fill_core_fields:
            return None  # the user's own tag, as beets writes it
        for desc in KEY_FIELDS:
            ours = own(item, desc.field)
            core = desc.core_field
            if (
                core
                and ours
                and parse_key(str(ours)) == parse_key(str(item.get(core) or ""))
            ):
                return {core: ours}
        return None

    def _write_tags(self, item: Item) -> None:
        """``-w``: the filled tags to the file (beets logs a failure with
        its path and reason; the run counts it, and exits 1 for it)."""
        if not item.try_write(tags=self._key_tag(item)):
            self.unwritten += 1
            return
        self._record_rewrite(item)
        item.store()  # the file's new mtime

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
            value = core_value(core, value)
            if not value:  # no beat found: a tempo of 0 fills nothing
                continue
            current = item.get(core, with_album=False)
            if (self.settings.force or not current) and current != value:
                item[core] = value
                changed += 1
        return changed
