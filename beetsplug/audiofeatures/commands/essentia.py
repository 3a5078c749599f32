"""``beet essentia``: plan, analyse in workers, store each result at
once (through the one runner), and ``--models``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import confuse
from beets import ui

from beets_audiofeatures.errors import CommandError
from beets_audiofeatures.essentia.classifiers import (
    ROUTE_TYPES,
    resolve_route,
    route_status,
)
from beets_audiofeatures.essentia.heads import (
    LICENCE,
    ClassifierError,
    download,
    read_head,
)
from beets_audiofeatures.runner import Tally, count
from beetsplug.audiofeatures.analysis.albums import (
    album_keys_to_respell,
    respell_album_keys,
    store_album_aggregates,
)
from beetsplug.audiofeatures.analysis.essentia import EssentiaAnalysis
from beetsplug.audiofeatures.analysis.essentia_plan import Work
from beetsplug.audiofeatures.analysis.places import place
from beetsplug.audiofeatures.analysis.runner import Plan, Runner, check_failures
from beetsplug.audiofeatures.library_query import (
    item_id,
    matching_albums,
    matching_ids,
)
from beetsplug.audiofeatures.settings.essentia import (
    EssentiaOptions,
    EssentiaSettings,
)

if TYPE_CHECKING:
    from beets.library import Album, Library
    from beets.logging import BeetsLogger


def manage_models(
    view: confuse.ConfigView, fetch: bool, pretend: bool = False
) -> None:
    """``--models`` / ``--download-models``: where the configured models
    are looked for, which files are missing, and their licence; with
    ``pretend``, ``--download-models`` downloads nothing."""
    settings = EssentiaSettings(view)
    files = settings.model_files
    route = resolve_route(settings.model_route)
    if not files.names:
        ui.print_(
            "No models configured. Add heads under audiofeatures.essentia."
            "models, for example:\n  models: [mood_happy-discogs-effnet-1, "
            "danceability-discogs-effnet-1, voice_instrumental-discogs-"
            "effnet-1, genre_discogs400-discogs-effnet-1]"
        )
        return
    if fetch and pretend:
        ui.print_(
            "would download each missing file below (and the extractors "
            "their descriptions name)"
        )
    elif fetch:
        # Twice: the heads' descriptions name the extractors they need.
        for _ in range(2):
            for url, path in files.missing(ROUTE_TYPES[route]):
                ui.print_(f"downloading {url}")
                try:
                    download(url, path)
                except OSError as exc:
                    reason = getattr(exc, "reason", None) or exc
                    raise CommandError(
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
    missing = files.missing(ROUTE_TYPES[route])
    for url, path in missing:
        ui.print_(f"  missing {path.name}: {url}")
    if missing:
        ui.print_(
            "Fetch them with beet essentia --download-models, or download "
            f"them into {files.folder} yourself."
        )
    else:
        ui.print_("All model files are present.")


def run(
    plugin_config: confuse.ConfigView,
    cluster: confuse.ConfigView,
    log: BeetsLogger,
    lib: Library,
    opts: EssentiaOptions,
    args: list[str],
) -> None:
    if opts.models or opts.download_models:
        manage_models(plugin_config, opts.download_models, opts.pretend)
        return
    settings = EssentiaSettings.from_config(plugin_config, opts)
    albums: list[Album] = []
    if opts.album:
        albums = matching_albums(lib, args)
        ids = [item_id(i) for album in albums for i in album.items()]
    else:
        ids = matching_ids(lib, args)
    if not ids:  # a typo in the query, or an empty library
        nothing = f"nothing to analyse: {no_match(args, opts.album)}"
        if opts.pretend:
            ui.print_(nothing)
        else:
            log.info("{}", nothing)
        return
    # A run that stores refills core fields and records files as it
    # plans; -p only says what it would refill.
    analysis = EssentiaAnalysis(
        settings, lib, log, settings.write, settle=not opts.pretend
    )
    runner = Runner(lib, analysis, log)
    plan = runner.plan_ids(ids)
    profile = settings.profile.label
    # -a stores every album value, in the setting's spelling, anyway.
    album_keys = (
        {} if opts.album
        else album_keys_to_respell(lib, ids, settings.key_spelling)
    )  # fmt: skip

    if opts.pretend:
        show_plan(runner, plan, len(ids), settings, albums, len(album_keys))
        return

    # Read only by runs that do work: a bad cluster setting never stops -p.
    place(
        runner, analysis.remote_work, cluster, opts.cluster, log,
        dump=settings.dump,
    )  # fmt: skip
    tally = Tally(skipped=plan.skipped)
    if analysis.refilled:
        tally.note("core fields refilled", analysis.refilled)
    if analysis.respelled:
        tally.note("keys respelt", analysis.respelled)
    if album_keys:
        respell_album_keys(lib, album_keys)
        tally.note("album keys respelt", len(album_keys))
    if not plan:
        log.info(
            "nothing to analyse: {} already current for profile {}",
            count(len(ids), "track"),
            profile,
        )
    else:
        log.info(
            "analysing {} with profile {} ({} already analysed)",
            count(len(plan), "track"),
            profile,
            tally.skipped,
        )
        runner.run_all(plan, tally)
    if albums:
        store_albums(albums, settings.key_spelling, log)
    if analysis.unwritten:
        tally.note("tags not written", analysis.unwritten)
    if plan or tally.notes:
        log.info("{}", tally.summary("analysed"))
    check_failures(tally, len(plan), "analysed")
    check_writes(tally)


def check_writes(tally: Tally) -> None:
    """Exit 1 for what was asked and not done beside the analysis: a
    dump, or the tags ``-w`` writes, that could not be written."""
    for note, noun, plural in (
        ("dump failed", "dump", "dumps"),
        ("tags not written", "file's tags", "files' tags"),
    ):
        if failed := tally.notes[note]:
            raise CommandError(
                f"{count(failed, noun, plural)} could not be written (the "
                "values are stored); the reasons are above"
            )


def no_match(args: list[str], album: bool) -> str:
    """Why there is nothing to analyse when nothing matched: a query
    that matches nothing (a typo), or an empty library."""
    kind = "album" if album else "track"
    if args:
        return f"no {kind} matches the query {' '.join(args)!r}"
    return f"the library has no {kind}s"


def show_plan(
    runner: Runner[Work, Any, Any],
    plan: Plan[Work],
    matched: int,
    settings: EssentiaSettings,
    albums: list[Album],
    album_keys: int,
) -> None:
    """``-p``: what a run would analyse, refill, respell and store, on
    stdout; ``album_keys``: how many albums' keys it would respell."""
    profile = settings.profile.label
    settle = {n: w for n, w in plan.needs.items() if not w.analyses}
    for number in settle:
        del plan.needs[number]
    refills = Plan({n: w for n, w in settle.items() if w.refill})
    respells = Plan({n: w for n, w in settle.items() if not w.refill})
    if not plan:
        ui.print_(
            f"nothing to analyse: {count(matched, 'matching track')}, "
            f"all current for profile {profile}"
        )
    else:
        jobs = min(settings.jobs, len(plan))
        ui.print_(
            f"would analyse {len(plan)} of {count(matched, 'track')} "
            f"with profile {profile} ({count(jobs, 'worker')}):"
        )
        runner.pretend(plan, "analyse")
    if refills:
        ui.print_(
            f"would refill {count(len(refills), 'track')} from the "
            "stored values, without analysing:"
        )
        runner.pretend(refills, "refill")
    if respells:
        ui.print_(
            f"would respell the keys of {count(len(respells), 'track')} as "
            f"{settings.key_spelling}, without analysing:"
        )
        runner.pretend(respells, "respell")
    if albums:  # stored on every -a run, analysed or not
        ui.print_(f"would store album values of {count(len(albums), 'album')}")
    if album_keys:
        ui.print_(
            f"would respell the keys of {count(album_keys, 'album')}"
            f" as {settings.key_spelling}"
        )


def store_albums(albums: list[Album], spelling: str, log: BeetsLogger) -> None:
    """``-a``: the albums' values from their tracks', with one line."""
    stored = store_album_aggregates(albums, spelling)
    names = ", ".join(f"{a.albumartist} - {a.album}" for a in stored[:5])
    more = f" and {len(stored) - 5} more" if len(stored) > 5 else ""
    log.info(
        "stored album values of {}{}",
        count(len(stored), "album") + (f": {names}" if names else ""),
        more,
    )


def import_runner(
    view: confuse.ConfigView,
    cluster: confuse.ConfigView,
    lib: Library,
    log: BeetsLogger,
) -> Runner[Any, Any, Any]:
    """The import stage's runner: values land in the database only, like
    every import-stage plugin's (files are moved afterwards); on the
    cluster of ``audiofeatures.cluster.address`` when there is one."""
    settings = EssentiaSettings.from_config(view)
    # A re-imported track's emptied core fields are refilled, not analysed.
    analysis = EssentiaAnalysis(settings, lib, log, write=False, settle=True)
    runner = Runner(lib, analysis, log)
    place(runner, analysis.remote_work, cluster, None, log)
    return runner
