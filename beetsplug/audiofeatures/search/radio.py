"""The radio (a playlist around seed tracks, steered by prompts) and the
path (a playlist that walks from one track to another), for ``beet
clapradio``, ``beet clappath``, the saved playlists and the page. The
walks are ``beets_audiofeatures.clap.playlists``'; here are the
library's side: the request, the seeds, the candidates and their facts.
Nothing here prints but the notes of the log."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import confuse
import numpy as np

from beets_audiofeatures.clap.playlists import (
    FLOW,
    Rules,
    path,
    radio,
    waypoints,
)
from beets_audiofeatures.clap.prompts import prompt_vectors
from beets_audiofeatures.clap.search import Ranking, rank
from beets_audiofeatures.errors import RequestError
from beets_audiofeatures.vectors import unit
from beetsplug.audiofeatures.library_query import item_fields, items_by_id
from beetsplug.audiofeatures.search.path_scores import WaypointScores
from beetsplug.audiofeatures.search.radio_rules import (
    RULE_FIELDS,
    Pool,
    Ranked,
    playlist_rules,
    track_evidence,
    track_facts,
    with_dj_fields,
    with_items,
    within_ids,
)
from beetsplug.audiofeatures.search.vectors import (
    LibraryVectors,
    embedded_index,
)
from beetsplug.audiofeatures.settings.clap import PLAYLISTS, ClapSettings

if TYPE_CHECKING:
    from beets.library import Item, Library
    from beets.logging import BeetsLogger

    from beets_audiofeatures.clap.index import Index, SourceKeys
    from beets_audiofeatures.clap.prompts import ModelHolder
    from beets_audiofeatures.clap.store import EmbeddingStore
    from beetsplug.audiofeatures.search.vectors import Found

#: Candidates ranked per track asked for; more are ranked only when the
#: rules leave too few of them.
POOL_PER_TRACK = 20
POOL_EXTRA = 100


@dataclass(frozen=True)
class RadioRequest:
    """What a radio or a path is asked to be: ``beet clapradio``'s (or
    ``clappath``'s) options, a saved playlist's fields or the page's
    radio. What it leaves as None is the setting (``radio_length``,
    ``max_per_artist``, ``max_per_album``, ``duplicate_threshold``);
    ``within`` is a beets query as typed; prompts are checked."""

    seeds: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()
    radio_length: int | None = None
    max_per_artist: int | None = None
    max_per_album: int | None = None
    duplicate_threshold: float | None = None
    within: str | None = None
    bpm_window: float | None = None
    half_double: bool = False
    harmonic: bool = False
    ranked: bool = False
    mix: bool = False
    no_translate: bool = False  # prompts embedded as typed
    #: Candidates ranked first (None: ``POOL_PER_TRACK`` per track and
    #: ``POOL_EXTRA``); more when the rules leave too few.
    pool: int | None = None

    @property
    def labels(self) -> list[str]:
        """What each positive score is labelled in the output."""
        return ["seeds", *self.prompts] if self.seeds else list(self.prompts)


class RadioLibrary:
    """What a radio or a path chooses from: the request's settings (its
    options over the configured ones) and rules, the tracks ``within``
    allows, and the library's current vectors."""

    def __init__(
        self,
        view: confuse.ConfigView,
        log: BeetsLogger,
        lib: Library,
        request: RadioRequest,
        keys: Callable[[], SourceKeys] | None = None,
        stored: Callable[[], tuple[EmbeddingStore, Index]] | None = None,
    ) -> None:
        self.log = log
        self.lib = lib
        self.request = request
        self.settings = ClapSettings(view, request).require(*PLAYLISTS)
        self.rules: Rules = playlist_rules(self.settings, request)
        self.within = within_ids(request.within, lib)
        # ``stored``, ``keys``: the index and the source keys a server
        # keeps (read once per change of the store or of the database,
        # not once per radio)
        store, index = embedded_index(self.settings, lib, stored)
        self.vectors = LibraryVectors(lib, store, index, keys)

    @property
    def length(self) -> int:
        return self.settings.radio_length

    def model(self) -> ModelHolder:
        return self.settings.text_model(self.log, "steering by")

    def candidate_rows(self) -> np.ndarray | None:
        """The rows of current vectors the playlist may take; None (with
        a line saying why) when there are none."""
        if self.within is not None and not self.within:
            self.log.info("no tracks match --within {}", self.request.within)
            return None
        ids = with_dj_fields(self.lib, self.within, self.rules, self.log)
        rows = self.vectors.rows(ids)
        if not len(rows):
            self.log.info("no tracks with vectors to choose from")
            return None
        return rows

    def row_of(self, rows: np.ndarray) -> dict[int, int]:
        """These rows by the item id they hold."""
        ids = self.vectors.index.ids[rows].tolist()
        return dict(zip(ids, rows.tolist(), strict=True))

    def ranked_rows(self, ranking: Ranking, rows: np.ndarray) -> dict[int, int]:
        """The rows (of ``rows``, ascending) that ``ranking`` ranked, by
        the item id they hold: looked up for its few ids, not mapped for
        every row of the library."""
        found = self.vectors.index.positions(ranking.ids)
        if not len(rows) or not len(found):
            return {}
        at = np.minimum(np.searchsorted(rows, found), len(rows) - 1)
        return self.row_of(found[rows[at] == found])

    def facts_of(self, rows: np.ndarray) -> dict[int, dict[str, Any]]:
        """What the rules read (``RULE_FIELDS``) of the tracks of these
        rows that are still in the library, by row: no ``Item`` built."""
        row_of = self.row_of(rows)
        found = item_fields(self.lib, list(row_of), RULE_FIELDS)
        return {row: found[n] for n, row in row_of.items() if n in found}

    def items_of(self, rows: np.ndarray) -> dict[int, Item]:
        """The items of these rows that are still in the library, by
        row."""
        row_of = self.row_of(rows)
        found = items_by_id(self.lib, list(row_of))
        return {row: found[n] for n, row in row_of.items() if n in found}


# -- the radio -------------------------------------------------------------


@dataclass
class Aims:
    """Where a radio starts and what each of its steps aims at."""

    seeds: np.ndarray  # the seeds' rows
    centre: np.ndarray  # where the walk starts
    aims: list[np.ndarray]  # each a targets x dim matrix
    avoid: np.ndarray | None


def radio_aims(radio_library: RadioLibrary, seeds: np.ndarray) -> Aims:
    """The seeds' mean (or with ``mix`` each seed in turn, in the
    library's order), steered by the prompts; the prompts alone when
    there are no seeds."""
    request, index = radio_library.request, radio_library.vectors.index
    store = radio_library.vectors.store
    model = radio_library.model()
    seed_vectors = np.asarray(index.matrix[seeds], np.float32)
    steering = (
        prompt_vectors(store, model, request.prompts)
        if request.prompts
        else None
    )
    avoid = (
        prompt_vectors(store, model, request.negative)
        if request.negative
        else None
    )
    # The walk starts where the seeds are (or the prompts point).
    sources = seed_vectors if len(seeds) or steering is None else steering
    centre = unit(sources.mean(axis=0))
    aims = (
        [seed_vectors[n][None] for n in np.argsort(index.ids[seeds])]
        if request.mix and len(seeds) > 1
        else [centre[None]] if len(seeds) else []
    )  # fmt: skip
    if steering is not None:
        aims = [np.concatenate([aim, steering]) for aim in aims] or [steering]
    return Aims(seeds, centre, aims, avoid)


def choose_radio(radio_library: RadioLibrary) -> list[Found]:
    """The radio's tracks, with their scores: around the tracks the
    request's seeds match, steered by its prompts, or around the prompts
    alone when there are no seeds."""
    return with_items(radio_library.lib, radio_tracks(radio_library))


def radio_tracks(radio_library: RadioLibrary) -> list[Ranked]:
    """``choose_radio``'s tracks by their ids, no ``Item`` loaded."""
    request = radio_library.request
    seeds = (
        radio_library.vectors.seed_rows(request.seeds, log=radio_library.log)
        if request.seeds
        else np.empty(0, np.int64)
    )
    rows = radio_library.candidate_rows()
    if rows is None:
        return []
    aims = radio_aims(radio_library, seeds)
    seed_tracks = radio_library.facts_of(seeds)
    index = radio_library.vectors.index
    # Versions of the seeds are not played: the seeds are already heard.
    seed_versions = [
        (np.asarray(index.matrix[row], np.float32), track_evidence(track))
        for row, track in sorted(seed_tracks.items())
    ]
    first_seed = min(seed_tracks, key=lambda row: index.ids[row], default=None)
    start_facts = (
        None if first_seed is None else track_facts(seed_tracks[first_seed])
    )
    picked, pool = walk_radio(
        radio_library, rows, aims,
        lambda pool: radio(
            pool.vectors, aimed_matrix(pool.vectors, aims), pool.facts,
            radio_library.rules, radio_library.length, start=aims.centre,
            start_facts=start_facts, seeds=seed_versions,
            flow=0.0 if request.ranked else FLOW,
        ),
    )  # fmt: skip
    if not picked:
        radio_library.log.info("no tracks meet the rules and caps")
    return [pool.ranked[position] for position in picked]


def walk_radio(
    radio_library: RadioLibrary,
    rows: np.ndarray,
    aims: Aims,
    walk: Callable[[Pool], list[int]],
) -> tuple[list[int], Pool]:
    """Rank a pool of candidates for each aim and walk it; a larger pool
    while the rules leave too few tracks and more candidates are left."""
    vectors, length = radio_library.vectors, radio_library.length
    size = radio_library.request.pool or length * POOL_PER_TRACK + POOL_EXTRA
    while True:
        rankings = [
            rank(
                vectors.index, aim, avoid=aims.avoid, rows=rows,
                exclude=aims.seeds, limit=-(-size // len(aims.aims)),
            )
            for aim in aims.aims
        ]  # fmt: skip
        ranking = merged(rankings)
        pool = Pool.of(
            vectors, ranking, radio_library.ranked_rows(ranking, rows)
        )
        picked = walk(pool)
        if len(picked) == length or size >= len(rows):
            return picked, pool
        size *= 8


def aimed_matrix(vectors: np.ndarray, aims: Aims) -> np.ndarray:
    """Each candidate's score against each aim, one column per aim."""
    return np.stack(
        [aimed_scores(vectors, aim, aims.avoid) for aim in aims.aims], axis=1
    )


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


# -- the path --------------------------------------------------------------


def one_track_row(
    radio_library: RadioLibrary, query: list[str], which: str
) -> int:
    rows = radio_library.vectors.seed_rows(query)
    if len(rows) > 1:
        raise RequestError(
            f"{which} {shlex.join(query)} matches {len(rows)} tracks with "
            "vectors: a path goes from one track to one track"
        )
    return int(rows[0])


def walk_path(
    radio_library: RadioLibrary, ends: list[list[str]]
) -> list[Found]:
    """The path's tracks from the track ``ends[0]`` matches to the one
    ``ends[1]`` matches, each scored against its waypoint."""
    index = radio_library.vectors.index
    first = one_track_row(radio_library, ends[0], "FROM")
    last = one_track_row(radio_library, ends[1], "TO")
    if first == last:
        raise RequestError("FROM and TO are the same track: a path needs two")
    rows = radio_library.candidate_rows()
    if rows is None:
        return []
    length = radio_library.length
    endpoints = np.array(sorted((first, last)), np.int64)
    end_vectors = np.asarray(index.matrix[[first, last]], np.float32)
    points = waypoints(end_vectors[0], end_vectors[1], length)
    by_row = radio_library.items_of(endpoints)
    first_item, last_item = by_row.get(first), by_row.get(last)
    if first_item is None or last_item is None:
        raise RequestError(
            "FROM or TO left the library while the path was made", 409
        )
    near = WaypointScores.of(
        index, np.setdiff1d(rows, endpoints, assume_unique=True),
        end_vectors, points[1:-1],
    )  # fmt: skip
    end_facts = [track_facts(first_item), track_facts(last_item)]
    size = POOL_PER_TRACK + POOL_EXTRA // length
    while True:
        ranking = near.nearest(size)
        pool = Pool.of(
            radio_library.vectors, ranking,
            radio_library.ranked_rows(ranking, rows),
        )  # fmt: skip
        steps = path(
            np.concatenate([end_vectors, pool.vectors]),
            [*end_facts, *pool.facts], radio_library.rules, points,
            first=0, last=1,
        )  # fmt: skip
        if len(steps) == length or size >= len(near.rows):
            break
        size *= 8
    # the pool's items: only those of the steps (positions after the ends)
    picked = with_items(
        radio_library.lib,
        [pool.ranked[position - 2] for position, _ in steps if position > 1],
    )
    items = {item.id: item for item, _, _ in picked}
    items |= {first_item.id: first_item, last_item.id: last_item}
    numbers = [first_item.id, last_item.id, *(n for n, _, _ in pool.ranked)]
    vectors = np.concatenate([end_vectors, pool.vectors])
    found = []
    for position, step in steps:
        if (item := items.get(numbers[position])) is None:
            continue  # left the library while the path was made
        score = float(vectors[position] @ points[step])
        found.append((item, score, [score]))
    return found
