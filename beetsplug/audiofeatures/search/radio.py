"""``beet clapradio``: a playlist around seed tracks, and ``beet
clappath``: a playlist that walks from one track to another. The walks
are ``beets_audiofeatures.clap.playlists``'; here are the library's
side (seeds, candidates, facts) and the output, as ``beet clapquery``
prints and writes it."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import confuse
import numpy as np
from beets.exceptions import UserError

from beets_audiofeatures.clap.index import Index
from beets_audiofeatures.clap.playlists import (
    FLOW,
    Rules,
    path,
    radio,
    waypoints,
)
from beets_audiofeatures.clap.search import Ranking, rank
from beets_audiofeatures.clap.store import EmbeddingStore
from beets_audiofeatures.runner import count
from beets_audiofeatures.vectors import unit
from beetsplug.audiofeatures.library_query import items_by_id
from beetsplug.audiofeatures.output import show_and_write, show_items
from beetsplug.audiofeatures.query_words import checked_prompt
from beetsplug.audiofeatures.search.prompts import ModelHolder, prompt_vectors
from beetsplug.audiofeatures.search.radio_rules import (
    Pool,
    playlist_rules,
    track_evidence,
    track_facts,
    with_dj_fields,
    within_ids,
)
from beetsplug.audiofeatures.search.vectors import (
    current_rows,
    embedded_index,
    like_terms,
    seed_rows,
)
from beetsplug.audiofeatures.settings.clap import PLAYLISTS, ClapSettings

if TYPE_CHECKING:
    from beets.library import Item, Library

#: Candidates ranked per track asked for; more are ranked only when the
#: rules leave too few of them.
POOL_PER_TRACK = 20
POOL_EXTRA = 100


def radio_options(entry: Mapping[str, Any]) -> SimpleNamespace:
    """``beet clapradio``'s options, for a radio asked for elsewhere (a
    saved playlist, the page): what ``entry`` does not give is the
    command's default."""
    return SimpleNamespace(
        radio_length=entry.get("limit"),
        max_per_artist=entry.get("max_per_artist"),
        max_per_album=entry.get("max_per_album"),
        duplicate_threshold=None,
        within=entry.get("query"),
        bpm_window=entry.get("bpm_window"),
        half_double=entry.get("half_double", False),
        harmonic=entry.get("harmonic", False),
        ranked=entry.get("ranked", False),
        mix=entry.get("mix", False),
    )


class PlaylistRequest:
    """What a radio or a path is asked to be (options, settings, rules)
    and what it chooses from (index, candidates)."""

    def __init__(
        self, view: confuse.ConfigView, log: Any, lib: Library, opts: Any
    ) -> None:
        self.log = log
        self.lib = lib
        self.opts = opts
        self.settings = ClapSettings(view, opts).require(*PLAYLISTS)
        self.rules: Rules = playlist_rules(self.settings, opts)
        self.within = within_ids(opts, lib)
        self.store: EmbeddingStore
        self.index: Index
        self.store, self.index = embedded_index(self.settings, lib)

    def candidate_rows(self) -> np.ndarray | None:
        """The rows of current vectors the playlist may take; None (with
        a line saying why) when there are none."""
        if self.within is not None and not self.within:
            self.log.info("no tracks match --within {}", self.opts.within)
            return None
        ids = with_dj_fields(self.lib, self.within, self.rules, self.log)
        rows = current_rows(self.lib, self.index, ids)
        if not len(rows):
            self.log.info("no tracks with vectors to choose from")
            return None
        return rows

    def items_of(self, rows: np.ndarray) -> dict[int, Item]:
        """The items of these rows that are still in the library, by
        row."""
        ids = [int(number) for number in self.index.ids[rows].tolist()]
        found = items_by_id(self.lib, ids)
        return {
            int(row): found[number]
            for row, number in zip(rows.tolist(), ids, strict=True)
            if number in found
        }

    def show(
        self,
        found: list[tuple[Item, float, list[float]]],
        labels: list[str],
        asked: int,
    ) -> list[Item]:
        if found and len(found) < asked:
            self.log.info(
                "{} of the {} asked for meet the rules and caps",
                count(len(found), "track"), asked,
            )  # fmt: skip
        if found or self.opts.json:
            show_items(found, labels, self.opts)
        return [item for item, _, _ in found]


def run_clapradio(
    view: confuse.ConfigView, log: Any, lib: Library, opts: Any, args: list[str]
) -> None:
    prompts = [checked_prompt(text, "--text") for text in opts.text or []]
    negative = [checked_prompt(text, "--not") for text in opts.negative or []]
    if not args and not prompts:
        raise UserError(
            "clapradio needs a SEED_QUERY, the tracks the radio starts "
            "from (beet clapradio 'title:Blue in Green'), or a --text PROMPT"
        )
    playlist = PlaylistRequest(view, log, lib, opts)
    show_and_write(
        opts.m3u,
        lambda: playlist.show(
            choose_radio(playlist, args, prompts, negative),
            ["seeds", *prompts] if args else prompts,
            playlist.settings.radio_length,
        ),
    )


def choose_radio(
    playlist: PlaylistRequest, seed_query: list[str], prompts: list[str],
    negative: list[str],
) -> list[tuple[Item, float, list[float]]]:  # fmt: skip
    """The radio's tracks, with their scores: around the tracks
    ``seed_query`` matches, steered by the prompts, or around the prompts
    alone when there is no query."""
    lib, index, opts = playlist.lib, playlist.index, playlist.opts
    seeds = (
        seed_rows(lib, index, seed_query)
        if seed_query
        else np.empty(0, np.int64)
    )
    rows = playlist.candidate_rows()
    if rows is None:
        return []
    model = ModelHolder(playlist.settings.spec, playlist.log)
    store = playlist.store
    seed_vectors = np.asarray(index.matrix[seeds], np.float32)
    steering = prompt_vectors(store, model, prompts) if prompts else None
    avoid = prompt_vectors(store, model, negative) if negative else None
    # The walk starts where the seeds are (or the prompts point).
    sources = seed_vectors if len(seeds) or steering is None else steering
    centre = unit(sources.mean(axis=0))
    # What each step aims at: the seeds' mean, or with --mix each seed
    # in turn (in the library's order); with the prompts, if any.
    aims = (
        [seed_vectors[n][None] for n in np.argsort(index.ids[seeds])]
        if opts.mix and len(seeds) > 1
        else [centre[None]] if len(seeds) else []
    )  # fmt: skip
    if steering is not None:
        aims = [np.concatenate([aim, steering]) for aim in aims] or [steering]
    seed_items = playlist.items_of(seeds)
    # Versions of the seeds are not played: the seeds are already heard.
    seed_versions = [
        (vector, track_evidence(seed_items[row]))
        for row, vector in zip(seeds.tolist(), seed_vectors, strict=True)
        if row in seed_items
    ]
    first_seed = min(
        seed_items.values(), key=lambda item: item.id or 0, default=None
    )
    length = playlist.settings.radio_length
    size = length * POOL_PER_TRACK + POOL_EXTRA
    while True:
        pool = Pool.of(lib, index, merged([
            rank(
                index, aim, avoid=avoid, rows=rows, exclude=seeds,
                limit=-(-size // len(aims)),
            )
            for aim in aims
        ]))  # fmt: skip
        picked = radio(
            pool.vectors,
            np.stack(
                [aimed_scores(pool.vectors, aim, avoid) for aim in aims],
                axis=1,
            ),
            pool.facts,
            playlist.rules,
            length,
            start=centre,
            start_facts=None if first_seed is None else track_facts(first_seed),
            seeds=seed_versions,
            flow=0.0 if opts.ranked else FLOW,
        )
        if len(picked) == length or size >= len(rows):
            break
        size *= 8
    if not picked:
        playlist.log.info("no tracks meet the rules and caps")
    return [pool.found[p] for p in picked]


def merged(rankings: list[Ranking]) -> Ranking:
    """The rankings' candidates, each once, in the order they first
    come (one ranking: itself)."""
    if len(rankings) == 1:
        return rankings[0]
    ids = np.concatenate([r.ids for r in rankings])
    _, first = np.unique(ids, return_index=True)
    keep = np.sort(first)
    return Ranking(
        ids[keep],
        np.concatenate([r.scores for r in rankings])[keep],
        np.concatenate([r.per_prompt for r in rankings])[keep],
    )


def aimed_scores(
    vectors: np.ndarray, aim: np.ndarray, avoid: np.ndarray | None
) -> np.ndarray:
    """Each candidate's score against one aim, as ``search.rank`` scores
    it: the mean similarity to its vectors less the mean to ``avoid``."""
    scores: np.ndarray = (vectors @ aim.T).mean(axis=1)
    if avoid is not None and len(vectors):
        scores = scores - (vectors @ avoid.T).mean(axis=1)
    return scores.astype(np.float32)


def run_clappath(
    view: confuse.ConfigView, log: Any, lib: Library, opts: Any, args: list[str]
) -> None:
    if len(args) != 2:
        raise UserError(
            "clappath needs FROM_QUERY and TO_QUERY, each quoted: beet "
            "clappath 'title:Blue in Green' 'title:So What' -n 10"
        )
    ends = [like_terms(text) for text in args]
    playlist = PlaylistRequest(view, log, lib, opts)
    if playlist.settings.radio_length < 2:
        raise UserError("-n/--limit must be 2 or more for a path")
    show_and_write(opts.m3u, lambda: walk_path(playlist, ends))


def one_track_row(
    playlist: PlaylistRequest, query: list[str], which: str
) -> int:
    rows = seed_rows(playlist.lib, playlist.index, query)
    if len(rows) > 1:
        raise UserError(
            f"{which} {shlex.join(query)} matches {len(rows)} tracks with "
            "vectors: a path goes from one track to one track"
        )
    return int(rows[0])


def walk_path(playlist: PlaylistRequest, ends: list[list[str]]) -> list[Item]:
    """Choose, print and return the path's tracks."""
    lib, index = playlist.lib, playlist.index
    first = one_track_row(playlist, ends[0], "FROM")
    last = one_track_row(playlist, ends[1], "TO")
    if first == last:
        raise UserError("FROM and TO are the same track: a path needs two")
    rows = playlist.candidate_rows()
    if rows is None:
        return playlist.show([], ["waypoint"], 0)
    length = playlist.settings.radio_length
    endpoints = np.array(sorted((first, last)), np.int64)
    end_vectors = np.asarray(index.matrix[[first, last]], np.float32)
    points = waypoints(end_vectors[0], end_vectors[1], length)
    by_row = playlist.items_of(endpoints)
    first_item, last_item = by_row.get(first), by_row.get(last)
    if first_item is None or last_item is None:
        raise UserError("FROM or TO left the library while the path was made")
    # One pass scores every candidate against every waypoint between.
    ranking = (
        rank(index, points[1:-1], rows=rows, exclude=endpoints)
        if length > 2
        else Ranking(
            np.empty(0, np.int64), np.empty(0, np.float32),
            np.empty((0, 1), np.float32),
        )
    )  # fmt: skip
    size = POOL_PER_TRACK + POOL_EXTRA // length
    while True:
        pool = Pool.of(lib, index, nearest_each(ranking, size))
        steps = path(
            np.concatenate([end_vectors, pool.vectors]),
            [track_facts(first_item), track_facts(last_item), *pool.facts],
            playlist.rules,
            points,
            first=0,
            last=1,
        )
        if len(steps) == length or size >= len(ranking.ids):
            break
        size *= 8
    items = [first_item, last_item, *(item for item, _, _ in pool.found)]
    vectors = np.concatenate([end_vectors, pool.vectors])
    found = []
    for position, step in steps:
        score = float(vectors[position] @ points[step])
        found.append((items[position], score, [score]))
    return playlist.show(found, ["waypoint"], length)


def nearest_each(ranking: Ranking, size: int) -> Ranking:
    """The part of a ranking against several waypoints that holds the
    ``size`` best candidates for each, in ranking order."""
    scores = ranking.per_prompt
    if size >= len(scores):
        return ranking
    best = np.argpartition(-scores, size - 1, axis=0)[:size]
    keep = np.unique(best)
    return Ranking(ranking.ids[keep], ranking.scores[keep], scores[keep])
