"""``beet clap``: embed tracks through the one runner; ``--dump``,
``--tags``, ``--playlists``, ``--stats`` and ``--prune`` around it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import confuse
from beets import ui

from beets_audiofeatures.runner import Tally, count
from beetsplug.audiofeatures.analysis.clap import ClapAnalysis
from beetsplug.audiofeatures.analysis.clap_store import report_store
from beetsplug.audiofeatures.analysis.clap_tags import (
    require_label_sets,
    tag_items,
)
from beetsplug.audiofeatures.analysis.places import place
from beetsplug.audiofeatures.analysis.runner import (
    Runner,
    check_failures,
    nothing_matched,
)
from beetsplug.audiofeatures.library_query import (
    each_item,
    item_id,
    matching_ids,
    source_key,
)
from beetsplug.audiofeatures.search.map import library_map
from beetsplug.audiofeatures.search.saved_playlists import (
    playlist_folder,
    pretend_saved_playlists,
    saved_playlists,
    write_saved_playlists,
)
from beetsplug.audiofeatures.search.vectors import current_rows, embedded_index
from beetsplug.audiofeatures.settings.clap import (
    EMBEDDING,
    STORE,
    TAGS,
    ClapSettings,
)
from beetsplug.audiofeatures.settings.web import WebSettings

if TYPE_CHECKING:
    from beets.library import Library
    from beets.logging import BeetsLogger


class ClapOptions(Protocol):
    force: bool | None
    pretend: bool
    jobs: int | None
    dump: str | None
    stats: bool
    prune: bool
    tags: bool
    playlists: bool
    cluster: str | None
    map: bool


def run(
    view: confuse.ConfigView,
    cluster: confuse.ConfigView,
    web_view: confuse.ConfigView,
    log: BeetsLogger,
    lib: Library,
    opts: ClapOptions,
    args: list[str],
) -> None:
    if opts.map:
        make_map(view, web_view, log, lib, opts)
        return
    settings = ClapSettings(view, opts)
    if opts.stats or opts.prune:
        settings.require(*STORE)
        report_store(settings, lib, prune=opts.prune, pretend=opts.pretend)
        return
    # --tags checks its label sets before any track is embedded.
    settings.require(*EMBEDDING, *(TAGS if opts.tags else ()))
    if opts.tags:
        require_label_sets(settings)
    if opts.playlists:  # checked before anything is embedded
        saved_playlists(view)
        playlist_folder(view)
    ids = matching_ids(lib, args)
    analysis = ClapAnalysis(settings, lib, log)
    runner = Runner(lib, analysis, log)
    plan = runner.plan_ids(ids)
    model = settings.spec.model
    nothing = nothing_matched(ids, args) or (
        f"{count(len(ids), 'track')} already embedded with {model}"
    )
    if opts.pretend:  # the plan is the output: stdout, like the items
        ui.print_(
            f"would embed {len(plan)} of {count(len(ids), 'track')} with "
            f"{model} ({count(settings.policy.count, 'window')} each)"
            if plan
            else f"nothing to embed: {nothing}"
        )
        runner.pretend(plan, "embed")
        if opts.tags:  # every track with a vector once the embedding ends
            fields = ", ".join(s.field for s in settings.label_sets)
            ui.print_(f"would tag {count(len(ids), 'track')} into {fields}")
        if opts.playlists:
            ui.print_(pretend_saved_playlists(view))
        return
    # Read only by runs that do work: a bad cluster setting never stops -p.
    where = place(
        runner, analysis.remote_work, cluster, opts.cluster, log, clap=True,
        dump=settings.dump,
    )  # fmt: skip
    if not plan:
        log.info("nothing to embed: {}", nothing)
    if settings.dump:  # what is already embedded is dumped from the store
        dump_embedded(analysis, [i for i in ids if i not in plan.needs])
    tally = Tally(skipped=plan.skipped)
    if plan:
        if where == "this machine":
            analysis.check_tools()  # ffmpeg here; on a cluster, the workers'
        else:
            analysis.check_store()
        log.info(
            "embedding {} with {} ({} already embedded)",
            count(len(plan), "track"), model, tally.skipped,
        )  # fmt: skip
        runner.run_all(plan, tally)
        log.info("{}", tally.summary("embedded"))
    if opts.tags:
        tag_items(settings, log, lib, ids, analysis.store, analysis.model)
    if opts.playlists:
        write_saved_playlists(view, log, lib)
    check_failures(tally, len(plan), "embedded")


def make_map(
    view: confuse.ConfigView,
    web_view: confuse.ConfigView,
    log: BeetsLogger,
    lib: Library,
    opts: ClapOptions,
) -> None:
    """``beet clap --map``: compute the map now (the page and clapmap
    would compute it when first asked)."""
    store, index = embedded_index(ClapSettings(view, opts).require(*STORE), lib)
    web = WebSettings(web_view, opts)
    projection = library_map(
        lib, store, index, web.map_sample, log, compute=False
    )
    if projection is not None:
        log.info("the map of {} is up to date", count(len(projection), "track"))
        return
    if opts.pretend:  # the plan is the output: stdout, like clap -p's
        tracks = count(len(current_rows(lib, index)), "track")
        ui.print_(f"would map {tracks} (the saved map is missing or stale)")
        return
    library_map(lib, store, index, web.map_sample, log)


def dump_embedded(analysis: ClapAnalysis, ids: Sequence[int]) -> None:
    """``--dump`` for tracks that are current: their stored vectors."""
    for item in each_item(analysis.lib, ids):
        key = source_key(item)
        if (
            key
            and (vector := analysis.store.get(item_id(item), key)) is not None
        ):
            analysis.dump(item, vector)


def import_runner(
    view: confuse.ConfigView,
    cluster: confuse.ConfigView,
    lib: Library,
    log: BeetsLogger,
) -> Runner[Any, Any, Any]:
    """The import stage's runner: the model loads once per import, and
    the index is folded when the import ends (:meth:`Runner.close`); on
    the cluster of ``audiofeatures.cluster.address`` when there is one."""
    settings = ClapSettings.from_config(view)
    analysis = ClapAnalysis(settings, lib, log)
    runner = Runner(lib, analysis, log)
    place(runner, analysis.remote_work, cluster, None, log, clap=True)
    return runner
