"""``beet clapquery``: rank the stored vectors against prompts and
``--like`` seeds, within a beets query, and show the best."""

from __future__ import annotations

import shlex
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import confuse
import numpy as np
from beets import ui
from beets.exceptions import UserError

from beets_audiofeatures.clap.index import Index
from beets_audiofeatures.clap.search import Ranking, rank
from beets_audiofeatures.clap.store import EmbeddingStore
from beets_audiofeatures.runner import count
from beets_audiofeatures.vectors import unit
from beetsplug.audiofeatures import input_limits
from beetsplug.audiofeatures.library_query import (
    CHUNK,
    item_id,
    items_by_id,
    matching_albums,
    matching_ids,
    source_key,
    source_keys,
)
from beetsplug.audiofeatures.output import (
    show_albums,
    show_and_write,
    show_items,
)
from beetsplug.audiofeatures.query_words import checked_prompt, split_arguments
from beetsplug.audiofeatures.search.prompts import ModelHolder, prompt_vectors
from beetsplug.audiofeatures.settings.clap import QUERY, ClapSettings

if TYPE_CHECKING:
    from beets.library import Album, Item, Library


def run_clapquery(
    view: confuse.ConfigView, log: Any, lib: Library, opts: Any, args: list[str]
) -> None:
    prompts, query = split_arguments(lib, opts, args)
    negative = [checked_prompt(text, "--not") for text in opts.negative or []]
    if opts.min_score is not None:
        input_limits.score(opts.min_score, "--min-score")
    if opts.like is not None and not opts.like.strip():
        raise UserError(
            "--like needs a beets query, such as --like 'title:Blue in Green'"
        )
    settings = ClapSettings(view, opts).require(*QUERY)
    store, index = embedded_index(settings, lib)
    show_and_write(
        opts.m3u,
        lambda: find_and_show(
            settings, log, lib, opts, (prompts, negative, query), store, index
        ),
    )


def embedded_index(
    settings: ClapSettings, lib: Library
) -> tuple[EmbeddingStore, Index]:
    """The configured model's store and its index; a line saying to run
    ``beet clap`` when nothing is embedded with it yet."""
    store = settings.store(lib)
    if not store.folder.is_dir():
        raise UserError(
            f"no CLAP vectors for {settings.model} yet: run beet clap first"
        )
    index = store.index()
    if not len(index):
        raise UserError(
            f"no tracks are embedded with {settings.model}: run beet clap first"
        )
    return store, index


def find_and_show(
    settings: ClapSettings,
    log: Any,
    lib: Library,
    opts: Any,
    words: tuple[list[str], list[str], list[str]],
    store: EmbeddingStore,
    index: Index,
) -> list[Item]:
    """Rank, print the results (a line saying why when there are none),
    and return the tracks shown."""
    prompts, negative, query = words
    model = ModelHolder(settings.spec, log)
    noun = "album" if opts.album else "track"

    def nothing(why: str) -> list[Item]:
        log.info("{}", why)
        if opts.json:  # still a JSON answer for scripts
            ui.print_("[]")
        return []

    rows = None
    if query:  # checked first: no match loads no model
        matching = candidate_ids(lib, query, opts.album)
        written = shlex.join(query)
        if not matching:
            return nothing(f"no {noun}s match {written}")
        rows = current_rows(lib, index, matching)
        if not len(rows):
            return nothing(
                (
                    f"the track matching {written} has no vector yet"
                    if len(matching) == 1
                    else f"none of the {len(matching)} tracks matching "
                    f"{written} has a vector yet"
                )
                + f": run beet clap {written}"
            )
        if unembedded := len(matching) - len(rows):
            log.info(
                "{} of the {} matching {} {} no vector yet (beet clap)",
                unembedded, count(len(matching), "track"), written,
                "has" if unembedded == 1 else "have",
            )  # fmt: skip
    targets = [prompt_vectors(store, model, prompts)] if prompts else []
    exclude = None
    if opts.like:
        exclude = seed_rows(lib, index, like_terms(opts.like), "--like ")
        targets.append(seed_vector(index, exclude))
    avoid = prompt_vectors(store, model, negative) if negative else None
    labels = prompts + ([f"like {opts.like}"] if opts.like else [])
    limit = opts.limit or settings.limit

    def ranked(candidates: int | None) -> Ranking:
        return rank(
            index, np.concatenate(targets), avoid=avoid, rows=rows,
            exclude=exclude, limit=candidates, min_score=opts.min_score,
        )  # fmt: skip

    if opts.album:  # albums need every track's score, from current vectors
        if rows is None:
            rows = current_rows(lib, index)
        albums = best_albums(lib, ranked(None), limit)
        shown = bool(albums)
        if shown or not opts.json:
            show_albums(albums, opts)
        items = [item for album, _, _ in albums for item in album.items()]
    else:
        found = best_items(lib, index, ranked, limit)
        shown = bool(found)
        if shown or not opts.json:
            show_items(found, labels, opts)
        items = [item for item, _, _ in found]
    if not shown:
        return nothing(
            f"no {noun}s score {opts.min_score} or more"
            if opts.min_score is not None
            else f"no {noun}s besides the --like ones"
            if opts.like
            else f"no {noun}s to rank"
        )
    return items


def current_rows(
    lib: Library,
    index: Index,
    ids: Sequence[int] | None = None,
    keys: dict[int, str] | None = None,
) -> np.ndarray:
    """The index rows of these items' (default: every item's) vectors
    computed from their current files, ascending; ``keys``: their
    ``source_keys``, when the caller has them already."""
    if keys is None:
        keys = source_keys(lib, ids)
    return index.positions(np.fromiter(keys, np.int64, len(keys)), keys)


def seed_rows(
    lib: Library, index: Index, query: Sequence[str], option: str = ""
) -> np.ndarray:
    """The rows of current vectors of the tracks ``query`` matches (the
    seeds of ``--like`` or of a radio); a line saying why when there are
    none. ``option`` names where the query was given."""
    written = shlex.join(query)
    seeds = matching_ids(lib, query)
    if not seeds:
        raise UserError(f"{option}{written} matches no tracks")
    rows = current_rows(lib, index, seeds)
    if not len(rows):
        raise UserError(
            f"none of the {count(len(seeds), 'track')} {option}{written} "
            f"matches has a vector yet: run beet clap {written}"
        )
    return rows


def seed_vector(index: Index, rows: np.ndarray) -> np.ndarray:
    """The target of ``--like`` (and the page's "more like this"): the
    unit mean of the seeds' vectors, as a 1 x dim matrix."""
    return unit(np.asarray(index.matrix[rows]).mean(axis=0))[None]


def best_items(
    lib: Library,
    index: Index,
    ranked: Callable[[int | None], Ranking],
    limit: int,
) -> list[tuple[Item, float, list[float]]]:
    """The best ``limit`` current tracks of a ranking (``ranked(n)``
    ranks and keeps the best ``n``, all with None), best first."""
    # Some of the best vectors may belong to tracks that are gone: ask
    # for spares, and for everything if the spares run out.
    candidates = limit * 2 + 50
    found = current_results(lib, index, ranked(candidates), limit)
    if len(found) < limit and candidates < len(index):
        found = current_results(lib, index, ranked(None), limit)
    return found


def like_terms(text: str) -> list[str]:
    """The terms of ``--like``'s query, split as a shell splits them."""
    try:
        return shlex.split(text)
    except ValueError as exc:  # an unclosed quote
        raise UserError(f"--like {text}: {exc}") from None


def candidate_ids(lib: Library, query: Sequence[str], album: bool) -> list[int]:
    """The tracks a query leaves to rank (with ``-a``, the tracks of the
    albums it matches)."""
    if album:
        return [
            item_id(item)
            for a in matching_albums(lib, query)
            for item in a.items()
        ]
    return matching_ids(lib, query)


def current_results(
    lib: Library, index: Index, ranking: Ranking, limit: int
) -> list[tuple[Item, float, list[float]]]:
    """The best ``limit`` ranked tracks that are current, their items
    loaded a few hundred per query, best first."""
    found = []
    ids = ranking.ids.tolist()
    for start in range(0, len(ids), CHUNK):
        window = ids[start : start + CHUNK]
        items = items_by_id(lib, window)
        for offset, number in enumerate(window):
            item = items.get(number)
            # A vector whose item is gone, whose id beets gave to a new
            # track, or whose file has new audio, is not a result.
            if item is None or index.key(number) != source_key(item):
                continue
            row = start + offset
            scores = [float(s) for s in ranking.per_prompt[row]]
            found.append((item, float(ranking.scores[row]), scores))
            if len(found) == limit:
                return found
    return found


def best_albums(
    lib: Library, ranking: Ranking, limit: int
) -> list[tuple[Album, float, int]]:
    """The best ``limit`` albums by their tracks' mean score, with the
    number of their tracks ranked."""
    with lib.transaction() as tx:
        album_of: dict[int, int] = {
            row[0]: row[1]
            for row in tx.query(
                "SELECT id, album_id FROM items WHERE album_id IS NOT NULL"
            )
        }
    scores: dict[int, list[float]] = defaultdict(list)
    for number, score in zip(
        ranking.ids.tolist(), ranking.scores.tolist(), strict=False
    ):
        if number in album_of:
            scores[album_of[number]].append(score)
    best = sorted(scores, key=lambda a: -float(np.mean(scores[a])))[:limit]
    found = []
    for number in best:
        if (album := lib.get_album(number)) is not None:
            found.append(
                (album, float(np.mean(scores[number])), len(scores[number]))
            )
    return found
