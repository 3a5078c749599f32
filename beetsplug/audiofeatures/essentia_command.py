"""``beet essentia``: plan, analyse in workers, store each result at once."""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import confuse
from beets import config as beets_config
from beets import ui
from beets.exceptions import UserError
from beets.util import displayable_path
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from beets_audiofeatures.essentia.classifiers import (
    LICENCE,
    ROUTES,
    SITE,
    ClassifierError,
    Head,
    ModelFiles,
    download,
    file_tags,
    read_head,
)
from beets_audiofeatures.essentia.descriptors import (
    BY_FIELD,
    GROUPS,
    Kind,
    descriptors_for,
    method_field,
)
from beets_audiofeatures.essentia.extraction import (
    AnalysisError,
    AnalysisJob,
    AnalysisResult,
    Analyzer,
    ClassifierSpec,
)
from beets_audiofeatures.essentia.profiles import (
    DEFAULT_KEY_PROFILE,
    DEFAULT_MIN_KEY_STRENGTH,
    KEY_PROFILES,
    Profile,
    ProfileError,
    resolve_profile,
)
from beets_audiofeatures.runner import (
    Failure,
    Stopped,
    StopSignals,
    Tally,
    WorkerPool,
    WorkerStartError,
    count,
    progress_bar,
)
from beetsplug.audiofeatures.albums import own, store_album_aggregates
from beetsplug.audiofeatures.library_query import (
    audio_fingerprint,
    dump_path,
    each_item,
    item_chunks,
    item_id,
    live_item,
    matching_albums,
    matching_ids,
    split_ids,
)
from beetsplug.audiofeatures.setting_values import (
    bad_setting,
    read_choice,
    read_number,
    read_setting,
)

if TYPE_CHECKING:
    from beets.library import Album, Item, Library

DEFAULTS: dict[str, Any] = {
    "auto": False,
    "profile": "music",
    "jobs": 0,
    "key_profile": DEFAULT_KEY_PROFILE,
    "min_key_strength": DEFAULT_MIN_KEY_STRENGTH,
    # Fill beets' own bpm and initial_key where they are empty, so plain
    # queries, smart playlists and players see the values.
    "fill_core_fields": True,
    "force": False,
    # Write those tags to the files too (-w / -W on the command line).
    "write": False,
    # Essentia's trained classifiers (heads such as
    # mood_happy-discogs-effnet-1), from models_dir.
    "models": [],
    "models_dir": None,  # default: <beets config dir>/audiofeatures/models
    "model_route": "auto",  # auto | tensorflow | onnx
    "top_classes": 10,  # of a head with more classes, keep the N likeliest
    "models_url": SITE,  # where --download-models fetches them
    # Also tag the files' MOOD and GENRE from the classifiers (with -w).
    # Analyse at most the first N minutes of a track (memory stays
    # bounded on hour-long mixes); 0 analyses everything.
    "max_minutes": 30,
    "write_tags": False,
    "mood_threshold": 0.5,  # a mood is tagged from this probability on
}


class EssentiaOptions(Protocol):
    force: bool | None
    pretend: bool
    write: bool | None
    jobs: int | None
    album: bool
    profile: str | None
    dump: str | None
    models: bool
    download_models: bool


def essentia_version() -> str:
    """Version of the installed Essentia distribution, without importing
    it (an import costs a second and prints to stdout)."""
    for dist in ("essentia", "essentia-tensorflow"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    raise UserError("Essentia is not installed: pip install --pre essentia")


@dataclass(frozen=True)
class EssentiaSettings:
    profile: Profile
    jobs: int
    force: bool
    fill_core_fields: bool
    write: bool
    dump: Path | None
    version: str
    classifiers: ClassifierSpec | None = None
    write_tags: bool = False
    mood_threshold: float = 0.5
    max_seconds: float = 60 * DEFAULTS["max_minutes"]

    @property
    def classifier_id(self) -> str:
        """What the ``essentia_classifiers`` field records."""
        spec = self.classifiers
        if spec is None:
            return ""
        return f"{spec.route}: {', '.join(spec.files.names)}"

    @classmethod
    def from_config(
        cls, view: confuse.ConfigView, opts: EssentiaOptions | None = None
    ) -> EssentiaSettings:
        """Validated settings; CLI options override the configuration.

        Raises ``UserError`` with one line naming the bad value.
        """

        def opt(name: str) -> Any:
            return getattr(opts, name, None)

        profile_spec = opt("profile") or read_setting(
            view["profile"], str, PROFILE_CHOICES
        )
        key_profile = read_setting(
            view["key_profile"], str, f"one of {', '.join(KEY_PROFILES)}"
        )
        min_key_strength = read_number(
            view["min_key_strength"], 0, "a strength from 0 to 1"
        )
        if min_key_strength > 1:
            raise bad_setting(
                view["min_key_strength"], "a strength from 0 to 1"
            )
        jobs = opt("jobs")
        if jobs is None:
            jobs = read_number(
                view["jobs"], 0, "0 (all cores) or more workers", whole=True
            )
        elif jobs < 0:
            raise UserError(
                f"-j/--jobs must be 0 (all cores) or more, not {jobs}"
            )
        force = opt("force") or read_setting(view["force"], bool, YES_NO)
        fill = read_setting(view["fill_core_fields"], bool, YES_NO)
        write = opt("write")
        if write is None:
            write = read_setting(view["write"], confuse.Optional(bool), YES_NO)
        max_minutes = read_number(
            view["max_minutes"], 0, "0 (no limit) or more minutes"
        )
        write_tags = read_setting(view["write_tags"], bool, YES_NO)
        mood_threshold = read_number(
            view["mood_threshold"], 0, "a probability from 0 to 1"
        )
        if mood_threshold > 1:
            raise bad_setting(
                view["mood_threshold"], "a probability from 0 to 1"
            )
        try:
            profile = resolve_profile(
                profile_spec,
                key_profile,
                Path(beets_config.config_dir()),
                min_key_strength,
            )
        except ProfileError as exc:
            raise UserError(f"audiofeatures.essentia: {exc}") from exc
        dump = opt("dump")
        return cls(
            profile=profile,
            jobs=jobs or os.cpu_count() or 1,
            force=bool(force),
            fill_core_fields=fill,
            write=bool(write),
            dump=Path(dump).expanduser().resolve() if dump else None,
            version=essentia_version(),
            classifiers=classifier_spec(view),
            write_tags=write_tags,
            mood_threshold=mood_threshold,
            max_seconds=60 * max_minutes,
        )


YES_NO = "yes or no"
PROFILE_CHOICES = (
    "music, rhythm, tonal, lowlevel, freesound, a mix such as rhythm,tonal, "
    "or the path of a YAML profile"
)


def model_files(view: confuse.ConfigView) -> ModelFiles:
    names = read_setting(
        view["models"], confuse.StrSeq(), "a list of model names"
    )
    folder = read_setting(
        view["models_dir"],
        confuse.Optional(confuse.Filename()),
        "the path of a folder",
    )
    site = read_setting(view["models_url"], str, "a URL").rstrip("/") + "/"
    default = Path(beets_config.config_dir()) / "audiofeatures" / "models"
    return ModelFiles(Path(folder) if folder else default, tuple(names), site)


def resolve_route(route: str) -> str:
    """``auto`` without importing Essentia: the installed distribution
    decides."""
    if route != "auto":
        return route
    try:
        importlib.metadata.version("essentia-tensorflow")
    except importlib.metadata.PackageNotFoundError:
        return "onnx"
    return "tensorflow"


#: What each classifier route imports, and how to get it.
ROUTE_NEEDS = {
    "onnx": ("onnxruntime", "pip install onnxruntime"),
    "tensorflow": (
        "essentia-tensorflow",
        "pip uninstall essentia; pip install --pre essentia-tensorflow",
    ),
}


def route_status(route: str) -> str:
    """The route, and whether what it needs is installed."""
    dist, install = ROUTE_NEEDS[route]
    try:
        importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return f"{route} ({dist} is not installed: {install})"
    return route


def classifier_spec(view: confuse.ConfigView) -> ClassifierSpec | None:
    files = model_files(view)
    if not files.names:
        return None
    route = read_choice(view["model_route"], ROUTES)
    top = read_number(
        view["top_classes"], 0, "0 (all classes) or more", whole=True
    )
    try:
        files.heads()  # every description present and readable
    except ClassifierError as exc:
        raise UserError(f"audiofeatures.essentia: {exc}") from exc
    return ClassifierSpec(files, resolve_route(route), top)


def classifier_field_types(view: confuse.ConfigView) -> dict[str, Kind]:
    """Fields of the configured heads (none while their descriptions
    are missing: ``beet essentia`` says so)."""
    kinds: dict[str, Kind] = {}
    try:
        for head in model_files(view).heads():
            kinds.update(head.fields())
    except (UserError, ClassifierError):
        pass
    return kinds


@functools.lru_cache(maxsize=4)
def described_heads(files: ModelFiles) -> list[Head]:
    """The heads' descriptions, read once per run."""
    return files.heads()


def stored_method(item: Item, group: str, settings: EssentiaSettings) -> Any:
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


def stale_groups(item: Item, settings: EssentiaSettings) -> tuple[str, ...]:
    """The profile's descriptor groups the track lacks or holds from
    another method (all of them with ``force``)."""
    profile = settings.profile
    if settings.force or not same_audio(item):
        return profile.groups
    return tuple(
        group
        for group in profile.groups
        if stored_method(item, group, settings)
        != profile.method(group, settings.version)
    )


def same_audio(item: Item) -> bool:
    """Whether the values were computed from the audio the file holds now
    (as far as beets knows; tracks analysed before 0.2 count as same)."""
    analysed = own(item, "essentia_audio")
    return analysed is None or analysed == audio_fingerprint(item)


def needs_classifiers(item: Item, settings: EssentiaSettings) -> bool:
    return settings.classifiers is not None and (
        settings.force
        or own(item, "essentia_classifiers") != settings.classifier_id
        or not same_audio(item)
    )


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


def plan(
    items: Iterable[Item], settings: EssentiaSettings, lib: Library
) -> tuple[list[Item], Tally]:
    """The items to analyse, and a tally that counts the rest as skipped."""
    items = list(items)
    todo = [item for item in items if work_for(item, settings, lib)]
    return todo, Tally(skipped=len(items) - len(todo))


def _retry_through_ffmpeg(job: AnalysisJob) -> AnalysisJob | None:
    # A file that kills Essentia's own decoder (Opus in .ogg crashes
    # AudioLoader) gets one more try, decoded by ffmpeg.
    return None if job.transcode else replace(job, transcode=True)


class EssentiaRunner:
    """Analyses items and stores each result as soon as it arrives.

    Keeps its worker pool between calls (the import stage calls once per
    album) until :meth:`close`.
    """

    def __init__(
        self, settings: EssentiaSettings, log: logging.Logger | Any
    ) -> None:
        self.settings = settings
        self.log = log
        self._pool: WorkerPool[AnalysisJob, AnalysisResult] | None = None
        self.signals = StopSignals()
        self._scratch: str | None = None

    def _get_pool(self) -> WorkerPool[AnalysisJob, AnalysisResult]:
        if self._pool is None:
            self._scratch = tempfile.mkdtemp(prefix="beets-audiofeatures-")
            factory = functools.partial(
                Analyzer,
                self.settings.profile,
                self._scratch,
                self.settings.classifiers,
            )
            self._pool = WorkerPool(
                factory,
                self.settings.jobs,  # started as work needs them
                expected=(AnalysisError,),
                retry_after_crash=_retry_through_ffmpeg,
                on_output=self._library_output,
            )
        return self._pool

    def _library_output(self, job: AnalysisJob, text: str) -> None:
        for line in text.splitlines():
            self.log.debug("{}: {}", displayable_path(job.path), line)

    def close(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.close(wait=wait)
            self._pool = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def run(
        self,
        lib: Library,
        items: Sequence[Item],
        tally: Tally,
        write: bool,
        bar: tqdm | None = None,
    ) -> None:
        """Analyse ``items``; failures are logged and added to ``tally``;
        ``bar`` (the caller's, across chunks) counts the tracks done."""
        if not items:
            return
        dump = self.settings.dump
        # Absolute paths, resolved here: beets 2.14 hands out paths
        # relative to the library outside the main thread's context.
        by_path = {os.path.abspath(item.path): item for item in items}
        todo = []
        for path, item in by_path.items():
            work = work_for(item, self.settings, lib)
            todo.append(
                AnalysisJob(
                    path=path,
                    expected_length=float(item.length or 0.0),
                    dump=dump_path(item, lib, dump) if dump else None,
                    descriptors=bool(work.groups),
                    groups=work.groups,
                    classify=work.classify,
                    max_seconds=self.settings.max_seconds,
                    audio=audio_fingerprint(item),
                )
            )
        bar = bar or progress_bar(len(items), shown=False)
        pool = self._get_pool()
        try:
            with logging_redirect_tqdm([logging.getLogger("beets")]):
                for job, result in pool.imap_unordered(todo):
                    item = by_path[job.path]
                    shown = displayable_path(item.path)
                    if isinstance(result, Failure):
                        tally.failed.append((shown, result.reason))
                        self.log.error("{}: {}", shown, result.reason)
                    elif self.store(lib, item, job, result, write, tally):
                        tally.done += 1
                    if not isinstance(result, Failure) and result.dump_error:
                        tally.note("dump failed")
                        self.log.error("{}: {}", shown, result.dump_error)
                    bar.update()
        except WorkerStartError as exc:
            self.close(wait=False)
            raise UserError(f"audiofeatures: {exc}") from exc
        except BaseException:
            self.close(wait=False)
            raise

    def store(
        self,
        lib: Library,
        loaded: Item,
        job: AnalysisJob,
        result: AnalysisResult,
        write: bool,
        tally: Tally,
    ) -> bool:
        """Put a result on its track, read afresh from the database: a
        track removed during the run stays removed, and a concurrent edit
        (``beet modify``) is neither undone in the database nor in the
        file. Whether it was stored."""
        settings = self.settings
        item = live_item(lib, loaded, self.log, "its values are discarded")
        if item is None:
            tally.note("discarded")
            return False
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
            item["essentia_audio"] = job.audio
            item["essentia_profile"] = settings.profile.name
            item["essentia_version"] = settings.version
            if svm := settings.profile.svm_models:
                item["essentia_svm_models"] = f"svm: {', '.join(svm)}"
        tags_changed = False
        if job.classify:
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
        self.log.debug(
            "{}: {}",
            displayable_path(item.path),
            ", ".join(f"{k}={v}" for k, v in sorted(values.items())),
        )
        with self.signals.storing(), lib.transaction():
            item.store()
            if write and (filled or tags_changed):
                item.try_write()
                item.store()  # the file's new mtime
        return True

    def _fill_core(self, item: Item, values: dict[str, Any]) -> int:
        """Fill beets' own ``bpm`` / ``initial_key`` from the values when
        they are empty (or with ``force``); how many changed."""
        changed = 0
        for field, value in values.items():
            core = BY_FIELD[field].core_field if field in BY_FIELD else None
            if core is None:
                continue
            if core == "bpm":
                value = round(value)
            current = item.get(core, with_album=False)
            if (self.settings.force or not current) and current != value:
                item[core] = value
                changed += 1
        return changed


def manage_models(view: confuse.ConfigView, fetch: bool) -> None:
    """``--models`` / ``--download-models``: where the configured models
    are looked for, which files are missing, and their licence."""
    files = model_files(view)
    route = resolve_route(read_choice(view["model_route"], ROUTES))
    if not files.names:
        ui.print_(
            "No models configured. Add heads under audiofeatures.essentia."
            "models, for example:\n  models: [mood_happy-discogs-effnet-1, "
            "danceability-discogs-effnet-1, voice_instrumental-discogs-"
            "effnet-1, genre_discogs400-discogs-effnet-1]"
        )
        return
    if fetch:
        # Twice: the heads' descriptions name the extractors they need.
        for _ in range(2):
            for url, path in files.missing(route):
                ui.print_(f"downloading {url}")
                try:
                    download(url, path)
                except OSError as exc:
                    reason = getattr(exc, "reason", None) or exc
                    raise UserError(
                        f"could not download {url} ({reason}); fetch it "
                        f"yourself into {files.folder}"
                    ) from exc
    ui.print_(f"models folder: {files.folder}")
    ui.print_(f"route: {route_status(route)}")
    ui.print_(f"licence: {LICENCE}")
    for name in files.names:
        description = files.folder / f"{name}.json"
        if description.is_file():
            try:
                head = read_head(description)
            except ClassifierError as exc:
                ui.print_(f"{name}: {exc}")
                continue
            ui.print_(
                f"{name}: {len(head.classes)} classes -> {head.field}, "
                f"{head.class_field('<class>')}"
            )
        else:
            ui.print_(f"{name}: no description yet")
    missing = files.missing(route)
    for url, path in missing:
        ui.print_(f"  missing {path.name}: {url}")
    if missing:
        ui.print_(
            "Fetch them with beet essentia --download-models, or download "
            f"them into {files.folder} yourself."
        )
    else:
        ui.print_("All model files are present.")


def run_command(
    plugin_config: confuse.ConfigView,
    log: Any,
    lib: Library,
    opts: EssentiaOptions,
    args: list[str],
) -> None:
    if opts.models or opts.download_models:
        manage_models(plugin_config, fetch=opts.download_models)
        return
    settings = EssentiaSettings.from_config(plugin_config, opts)
    albums: list[Album] = []
    if opts.album:
        albums = matching_albums(lib, args)
        ids = [item_id(i) for album in albums for i in album.items()]
    else:
        ids = matching_ids(lib, args)
    # Items are loaded a chunk at a time: memory does not grow with
    # the size of the query.
    todo, skipped = split_ids(
        lib, ids, lambda item: bool(work_for(item, settings, lib))
    )
    tally = Tally(skipped=skipped)
    profile = settings.profile.name

    if opts.pretend:
        if not todo:
            ui.print_(
                f"nothing to analyse: {count(len(ids), 'matching track')}, "
                f"all current for profile {profile}"
            )
            return
        jobs = min(settings.jobs, len(todo))
        ui.print_(
            f"would analyse {len(todo)} of {count(len(ids), 'track')} with "
            f"profile {profile} ({count(jobs, 'worker')}):"
        )
        for item in each_item(lib, todo):
            work = work_for(item, settings, lib)
            fields = [d.field for d in descriptors_for(work.groups)]
            what = work.describe() + (
                f": {', '.join(fields)}" if fields else ""
            )
            ui.print_(f"analyse: {item} [{what}]")
        return

    if not todo:
        log.info(
            "nothing to analyse: {} already current for profile {}",
            count(len(ids), "track"),
            profile,
        )
    else:
        log.info(
            "analysing {} with profile {} ({} already analysed)",
            count(len(todo), "track"),
            profile,
            tally.skipped,
        )
    runner = EssentiaRunner(settings, log)
    try:
        with runner.signals, progress_bar(len(todo)) as bar:
            for chunk in item_chunks(lib, todo):
                runner.run(lib, chunk, tally, settings.write, bar)
    except Stopped as stop:
        ui.print_(tally.stopped(stop, "analysed"))
        raise SystemExit(stop.exit_code) from None
    finally:
        runner.close()
    if albums:
        stored = store_album_aggregates(albums)
        names = ", ".join(f"{a.albumartist} - {a.album}" for a in stored[:5])
        more = f" and {len(stored) - 5} more" if len(stored) > 5 else ""
        log.info(
            "stored album values of {}{}",
            count(len(stored), "album") + (f": {names}" if names else ""),
            more,
        )
    if todo or tally.notes:
        log.info("{}", tally.summary("analysed"))
    if tally.failed:
        raise UserError(
            f"{len(tally.failed)} of {count(len(todo), 'track')} could not "
            "be analysed; the reasons are above"
        )
    if dumps := tally.notes["dump failed"]:
        raise UserError(
            f"{count(dumps, 'dump')} could not be written (the values are "
            "stored); the reasons are above"
        )


def import_stage(
    runner: EssentiaRunner, lib: Library, items: Sequence[Item], log: Any
) -> None:
    """Analyse an imported album's tracks; values land in the database
    only, like every import-stage plugin (files are moved afterwards)."""
    todo, tally = plan(items, runner.settings, lib)
    if not todo:
        return
    album = items[0].get("album") or items[0].get("title") or "tracks"
    log.info(
        "analysing {} of {} with profile {}",
        count(len(todo), "track"),
        album,
        runner.settings.profile.name,
    )
    runner.run(lib, todo, tally, write=False)
    log.info("{}", tally.summary("analysed"))
