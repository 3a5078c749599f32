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

from .batch import Failure, Tally, WorkerPool, WorkerStartError, progress_bar
from .classifiers import (
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
from .descriptors import BY_FIELD, Kind, aggregate_album, descriptors_for
from .extraction import (
    AnalysisError,
    AnalysisJob,
    AnalysisResult,
    Analyzer,
    ClassifierSpec,
)
from .library_query import (
    each_item,
    item_chunks,
    item_id,
    matching_ids,
    split_ids,
)
from .profiles import Profile, ProfileError, resolve_profile

if TYPE_CHECKING:
    from beets.library import Album, Item, Library

DEFAULTS: dict[str, Any] = {
    "auto": False,
    "profile": "music",
    "jobs": 0,
    "key_profile": "edma",
    "fill_core_fields": False,
    "force": False,
    "write": None,  # None: follow beets' import.write
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
    raise UserError(
        "Essentia is not installed: pip install 'beets-audiofeatures[essentia]'"
    )


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
    max_seconds: float = 0

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

        try:
            profile_spec = opt("profile") or view["profile"].as_str()
            key_profile = view["key_profile"].as_str()
            jobs = opt("jobs")
            if jobs is None:
                jobs = view["jobs"].get(int)
            force = opt("force") or view["force"].get(bool)
            fill = view["fill_core_fields"].get(bool)
            write = opt("write")
            if write is None:
                write = view["write"].get(confuse.Optional(bool))
        except confuse.ConfigError as exc:
            raise UserError(f"audiofeatures.essentia: {exc}") from exc
        try:
            max_minutes = view["max_minutes"].as_number()
        except confuse.ConfigError as exc:
            raise UserError(f"audiofeatures.essentia: {exc}") from exc
        if max_minutes < 0:
            raise UserError(
                "audiofeatures.essentia.max_minutes must be 0 (no limit) or "
                f"more, not {max_minutes}"
            )
        if jobs < 0:
            raise UserError(
                f"audiofeatures.essentia.jobs must be 0 (all cores) or more, "
                f"not {jobs}"
            )
        try:
            profile = resolve_profile(
                profile_spec, key_profile, Path(beets_config.config_dir())
            )
        except ProfileError as exc:
            raise UserError(f"audiofeatures.essentia: {exc}") from exc
        dump = opt("dump")
        return cls(
            profile=profile,
            jobs=jobs or os.cpu_count() or 1,
            force=bool(force),
            fill_core_fields=fill,
            write=ui.should_write(write),
            dump=Path(dump).expanduser().resolve() if dump else None,
            version=essentia_version(),
            classifiers=classifier_spec(view),
            write_tags=view["write_tags"].get(bool),
            mood_threshold=view["mood_threshold"].as_number(),
            max_seconds=60 * max_minutes,
        )


def model_files(view: confuse.ConfigView) -> ModelFiles:
    try:
        names = view["models"].as_str_seq()
        folder = view["models_dir"].get(confuse.Optional(confuse.Filename()))
        site = view["models_url"].as_str().rstrip("/") + "/"
    except confuse.ConfigError as exc:
        raise UserError(f"audiofeatures.essentia: {exc}") from exc
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


def classifier_spec(view: confuse.ConfigView) -> ClassifierSpec | None:
    files = model_files(view)
    if not files.names:
        return None
    try:
        route = view["model_route"].as_choice(list(ROUTES))
        top = view["top_classes"].get(int)
    except confuse.ConfigError as exc:
        raise UserError(f"audiofeatures.essentia: {exc}") from exc
    if top < 0:
        raise UserError(
            "audiofeatures.essentia.top_classes must be 0 (all) or more"
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


def needs_descriptors(item: Item, settings: EssentiaSettings) -> bool:
    return (
        settings.force
        or "essentia_analyzed" not in item
        or item.get("essentia_profile") != settings.profile.name
        or item.get("essentia_version") != settings.version
    )


def needs_classifiers(item: Item, settings: EssentiaSettings) -> bool:
    return settings.classifiers is not None and (
        settings.force
        or item.get("essentia_classifiers") != settings.classifier_id
    )


def needs_analysis(item: Item, settings: EssentiaSettings) -> bool:
    """Whether an item lacks a current analysis or current classes (or
    ``force`` is on). Adding a model later runs just the models."""
    return needs_descriptors(item, settings) or needs_classifiers(
        item, settings
    )


def plan(
    items: Iterable[Item], settings: EssentiaSettings
) -> tuple[list[Item], Tally]:
    """The items to analyse, and a tally that counts the rest as skipped."""
    items = list(items)
    todo = [item for item in items if needs_analysis(item, settings)]
    return todo, Tally(skipped=len(items) - len(todo))


def dump_path(
    item: Item, lib: Library, dump_dir: Path, suffix: str = ".json"
) -> bytes:
    """Where ``--dump`` puts an item's output: the library's folder tree
    mirrored under ``dump_dir``, the audio file name plus ``suffix``."""
    path = os.path.abspath(item.path)
    root = os.path.join(os.path.abspath(lib.directory), b"")
    relative = path[len(root) :] if path.startswith(root) else path.lstrip(b"/")
    return os.path.join(os.fsencode(dump_dir), relative) + suffix.encode()


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
            )
        return self._pool

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
        todo = [
            AnalysisJob(
                path=path,
                expected_length=float(item.length or 0.0),
                dump=dump_path(item, lib, dump) if dump else None,
                descriptors=needs_descriptors(item, self.settings),
                classify=needs_classifiers(item, self.settings),
                max_seconds=self.settings.max_seconds,
            )
            for path, item in by_path.items()
        ]
        bar = bar or progress_bar(len(items), shown=False)
        pool = self._get_pool()
        try:
            with logging_redirect_tqdm([logging.getLogger("beets")]):
                for job, result in pool.imap_unordered(todo):
                    item = by_path[job.path]
                    if isinstance(result, Failure):
                        shown = displayable_path(item.path)
                        tally.failed.append((shown, result.reason))
                        self.log.error("{}: {}", shown, result.reason)
                    else:
                        self.store(item, job, result, write)
                        tally.done += 1
                    bar.update()
        except WorkerStartError as exc:
            self.close(wait=False)
            raise UserError(f"audiofeatures: {exc}") from exc
        except BaseException:
            self.close(wait=False)
            raise

    def store(
        self,
        item: Item,
        job: AnalysisJob,
        result: AnalysisResult,
        write: bool,
    ) -> None:
        settings = self.settings
        item.update(result.values)
        if job.descriptors:
            item["essentia_analyzed"] = time.time()
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
                    result.values,
                    settings.mood_threshold,
                )
                tags_changed = any(item.get(k) != v for k, v in tags.items())
                item.update(tags)
        core_changed = settings.fill_core_fields and self._fill_core(
            item, result.values
        )
        self.log.debug(
            "{}: {}",
            displayable_path(item.path),
            ", ".join(f"{k}={v}" for k, v in sorted(result.values.items())),
        )
        if write and (core_changed or tags_changed):
            item.try_write()
        item.store()

    def _fill_core(self, item: Item, values: dict[str, Any]) -> bool:
        changed = False
        for field, value in values.items():
            core = BY_FIELD[field].core_field if field in BY_FIELD else None
            if core is None:
                continue
            if core == "bpm":
                value = round(value)
            if (self.settings.force or not item.get(core)) and item.get(
                core
            ) != value:
                item[core] = value
                changed = True
        return changed


def manage_models(view: confuse.ConfigView, fetch: bool) -> None:
    """``--models`` / ``--download-models``: where the configured models
    are looked for, which files are missing, and their licence."""
    files = model_files(view)
    try:
        route = resolve_route(view["model_route"].as_choice(list(ROUTES)))
    except confuse.ConfigError as exc:
        raise UserError(f"audiofeatures.essentia: {exc}") from exc
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
    ui.print_(f"route: {route}")
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


def store_album_aggregates(albums: Iterable[Album]) -> None:
    for album in albums:
        tracks = [dict(item) for item in album.items()]
        values = aggregate_album(tracks)
        if values:
            album.update(values)
            album.store()


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
        albums = list(lib.albums(args))
        ids = [item_id(i) for album in albums for i in album.items()]
    else:
        ids = matching_ids(lib, args)
    # Items are loaded a chunk at a time: memory does not grow with
    # the size of the query.
    todo, skipped = split_ids(
        lib, ids, lambda item: needs_analysis(item, settings)
    )
    tally = Tally(skipped=skipped)

    if opts.pretend:
        fields = [d.field for d in descriptors_for(settings.profile.groups)]
        log.info(
            "would analyse {} of {} tracks with profile {} ({} jobs), "
            "setting {}",
            len(todo),
            len(ids),
            settings.profile.name,
            min(settings.jobs, len(todo)) if todo else 0,
            ", ".join(fields),
        )
        for item in each_item(lib, todo):
            ui.print_(f"analyse: {item}")
        return

    log.info(
        "analysing {} tracks with profile {} ({} already analysed)",
        len(todo),
        settings.profile.name,
        tally.skipped,
    )
    runner = EssentiaRunner(settings, log)
    try:
        with progress_bar(len(todo)) as bar:
            for chunk in item_chunks(lib, todo):
                runner.run(lib, chunk, tally, settings.write, bar)
    finally:
        runner.close()
    if albums:
        store_album_aggregates(albums)
    log.info("{}", tally.summary("analysed"))
    if tally.failed:
        raise UserError(
            f"{len(tally.failed)} of {len(todo)} tracks could not be "
            "analysed; the reasons are above"
        )
