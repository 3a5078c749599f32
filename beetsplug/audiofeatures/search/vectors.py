"""The vector queries beneath ``beet clapquery``, ``beet clapradio``,
``beet clapdupes``, the map and the page: the embedded index, the current
rows of some tracks, the seeds of ``--like`` or of a radio, and ranked
results. Nothing here prints: a request that cannot be answered raises a
:class:`RequestError`, and an answer that is empty says why."""

from __future__ import annotations

import shlex
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from beets_audiofeatures.clap.index import Index, SourceKeys
from beets_audiofeatures.clap.prompts import ModelHolder, prompt_vectors
from beets_audiofeatures.clap.search import Ranking, rank
from beets_audiofeatures.clap.store import EmbeddingStore
from beets_audiofeatures.errors import RequestError
from beets_audiofeatures.runner import count
from beets_audiofeatures.vectors import unit
from beetsplug.audiofeatures.library_query import (
    CHUNK,
    item_id,
    items_by_id,
    matching_albums,
    matching_ids,
    source_key,
    source_keys,
)
from beetsplug.audiofeatures.query_words import shell_words
from beetsplug.audiofeatures.settings.clap import ClapSettings

if TYPE_CHECKING:
    from beets.library import Album, Item, Library
    from beets.logging import BeetsLogger

    #: A ranked track: the item, its score and each prompt's own score.
    Found = tuple[Item, float, list[float]]
    #: A ranked album: the album, its tracks' mean score, tracks ranked.
    FoundAlbum = tuple[Album, float, int]


def stored_index(
    settings: ClapSettings, lib: Library
) -> tuple[EmbeddingStore, Index]:
    """The configured model's store and its index, as they are now (the
    index may be empty); a 503 saying to run ``beet clap`` when nothing
    was ever embedded with the model."""
    store = settings.store(lib)
    if not store.folder.is_dir():
        raise RequestError(
            f"no CLAP vectors for {settings.model} yet: run beet clap first",
            503,
        )
    return store, store.index()


def embedded_index(
    settings: ClapSettings,
    lib: Library,
    stored: Callable[[], tuple[EmbeddingStore, Index]] | None = None,
) -> tuple[EmbeddingStore, Index]:
    """``stored_index`` (or ``stored()``, where a server keeps it), with
    at least one vector in it."""
    store, index = stored() if stored else stored_index(settings, lib)
    if not len(index):
        raise RequestError(
            f"no tracks are embedded with {settings.model}: run beet clap "
            "first",
            503,
        )
    return store, index


def no_vector_line(matched: int, query: Sequence[str], option: str = "") -> str:
    """The one line for a query whose tracks have no vector yet
    (``option``: where the query was given, such as ``--like ``)."""
    written = shlex.join(query)
    return (
        f"the track matching {option}{written} has no vector yet"
        if matched == 1
        else f"none of the {matched} tracks matching {option}{written} "
        "has a vector yet"
    ) + f": run beet clap {written}"


def current_rows(
    lib: Library,
    index: Index,
    ids: Sequence[int] | None = None,
    keys: Mapping[int, str] | None = None,
) -> np.ndarray:
    """The index rows of these items' (default: every item's) vectors
    computed from their current files, ascending; ``keys``: every item's
    (or these items') ``source_keys``, when the caller has them."""
    if keys is None:
        keys = source_keys(lib, ids)
    if not isinstance(keys, SourceKeys):
        keys = SourceKeys(keys)
    if ids is None:
        return keys.rows_of(index)
    return index.positions(np.asarray(ids, np.int64), keys)


def seed_vector(index: Index, rows: np.ndarray) -> np.ndarray:
    """The target of ``--like`` (and the page's "more like this"): the
    unit mean of the seeds' vectors, as a 1 x dim matrix."""
    return unit(np.asarray(index.matrix[rows]).mean(axis=0))[None]


class LibraryVectors:
    """One request's view of the library's current vectors: the store,
    its index, and every item's source key, read from the database once,
    when first needed (``keys``: where the caller keeps them instead)."""

    def __init__(
        self,
        lib: Library,
        store: EmbeddingStore,
        index: Index,
        keys: Callable[[], SourceKeys] | None = None,
    ) -> None:
        self.lib = lib
        self.store = store
        self.index = index
        self._read_keys = keys or (lambda: source_keys(lib))

    @cached_property
    def keys(self) -> SourceKeys:
        """Every item's source key (one pass over the items table)."""
        return self._read_keys()

    def rows(self, ids: Sequence[int] | None = None) -> np.ndarray:
        """The rows of these items' (default: every item's) current
        vectors, ascending."""
        return current_rows(self.lib, self.index, ids, self.keys)

    def matched_rows(
        self, ids: Sequence[int], query: Sequence[str], option: str = ""
    ) -> np.ndarray:
        """The rows of the current vectors of the tracks ``query``
        matched (``ids``, at least one); a 409 saying to run ``beet clap``
        when none has one."""
        rows = self.rows(ids)
        if not len(rows):
            raise RequestError(no_vector_line(len(ids), query, option), 409)
        return rows

    def seed_rows(
        self,
        query: Sequence[str],
        option: str = "",
        log: BeetsLogger | None = None,
    ) -> np.ndarray:
        """The rows of current vectors of the tracks ``query`` matches
        (the seeds of ``--like`` or of a radio). ``option`` names where
        the query was given; ``log`` hears of seeds left out for want of
        a vector (the others still make the seed)."""
        seeds = matching_ids(self.lib, query)
        if not seeds:
            raise RequestError(
                f"{option}{shlex.join(query)} matches no tracks", 404
            )
        rows = self.matched_rows(seeds, query, option)
        if log is not None and (unembedded := len(seeds) - len(rows)):
            log.info(
                "{} of the {} matching {}{} {} no vector yet and {} left "
                "out (beet clap)",
                unembedded, count(len(seeds), "track"), option,
                shlex.join(query), "has" if unembedded == 1 else "have",
                "is" if unembedded == 1 else "are",
            )  # fmt: skip
        return rows

    def is_current(self, number: int, track: Item | Mapping[str, Any]) -> bool:
        """Whether the vector stored for ``number`` is ``track``'s (its
        ``Item`` or its fields with ``source_key``'s): not if beets gave
        the id to a new track, or its file has new audio."""
        return self.index.key(number) == source_key(track)

    def results(self, ranking: Ranking, limit: int) -> list[Found]:
        """The best ``limit`` ranked tracks that are current, their items
        loaded a few hundred per query, best first."""
        found = []
        ids = ranking.ids.tolist()
        for start in range(0, len(ids), CHUNK):
            window = ids[start : start + CHUNK]
            items = items_by_id(self.lib, window)
            for offset, number in enumerate(window):
                item = items.get(number)
                if item is None or not self.is_current(number, item):
                    continue
                row = start + offset
                scores = [float(s) for s in ranking.per_prompt[row]]
                found.append((item, float(ranking.scores[row]), scores))
                if len(found) == limit:
                    return found
        return found

    def best_items(
        self, ranked: Callable[[int | None], Ranking], limit: int
    ) -> list[Found]:
        """The best ``limit`` current tracks of a ranking (``ranked(n)``
        ranks and keeps the best ``n``, all with None), best first."""
        # Some of the best vectors may belong to tracks that are gone:
        # ask for spares, and for everything if the spares run out.
        candidates = limit * 2 + 50
        found = self.results(ranked(candidates), limit)
        if len(found) < limit and candidates < len(self.index):
            found = self.results(ranked(None), limit)
        return found


def best_albums(lib: Library, ranking: Ranking, limit: int) -> list[FoundAlbum]:
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


def like_terms(text: str) -> list[str]:
    """The terms of ``--like``'s query, split as a shell splits them."""
    return shell_words(text, f"--like {text}")


# -- beet clapquery's question and answer --------------------------------


@dataclass(frozen=True)
class QueryRequest:
    """What ``beet clapquery`` (or a caller like it) asks: prompts to
    sound like and not like, tracks to sound like (``like``, a beets
    query as typed), the beets query ranked within, albums or tracks,
    how many, and the least score."""

    prompts: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()
    query: tuple[str, ...] = ()
    like: str | None = None
    album: bool = False
    limit: int = 20
    min_score: float | None = None

    @property
    def noun(self) -> str:
        return "album" if self.album else "track"

    @property
    def labels(self) -> list[str]:
        """What each positive score is labelled in the output."""
        return [*self.prompts, *([f"like {self.like}"] if self.like else [])]


@dataclass(frozen=True)
class QueryAnswer:
    """The ranked tracks (or albums, with ``album``) and, when there are
    none, the line saying why."""

    tracks: list[Found]
    albums: list[FoundAlbum] | None = None
    why_empty: str = ""

    @property
    def items(self) -> list[Item]:
        """The tracks shown, as ``--m3u`` writes them."""
        if self.albums is not None:
            return [
                item for album, _, _ in self.albums for item in album.items()
            ]
        return [item for item, _, _ in self.tracks]


def answer_query(
    vectors: LibraryVectors,
    model: ModelHolder,
    request: QueryRequest,
    log: BeetsLogger,
) -> QueryAnswer:
    """Rank the current vectors for ``request``. A query that matches
    nothing is answered before the model would load."""
    rows, nothing = query_rows(vectors, request, log)
    if nothing:
        return QueryAnswer([], why_empty=nothing)
    targets = []
    if request.prompts:
        targets.append(prompt_vectors(vectors.store, model, request.prompts))
    exclude = None
    if request.like:
        exclude = vectors.seed_rows(like_terms(request.like), "--like ", log)
        targets.append(seed_vector(vectors.index, exclude))
    avoid = (
        prompt_vectors(vectors.store, model, request.negative)
        if request.negative
        else None
    )

    def ranked(candidates: int | None) -> Ranking:
        return rank(
            vectors.index, np.concatenate(targets), avoid=avoid, rows=rows,
            exclude=exclude, limit=candidates, min_score=request.min_score,
        )  # fmt: skip

    if request.album:  # albums need every track's score, from current vectors
        if rows is None:
            rows = vectors.rows()
        albums = best_albums(vectors.lib, ranked(None), request.limit)
        return QueryAnswer([], albums, "" if albums else empty_reason(request))
    found = vectors.best_items(ranked, request.limit)
    return QueryAnswer(found, None, "" if found else empty_reason(request))


def query_rows(
    vectors: LibraryVectors, request: QueryRequest, log: BeetsLogger
) -> tuple[np.ndarray | None, str]:
    """The rows the request's beets query leaves to rank (None: every
    row), or the line saying why it leaves none."""
    if not request.query:
        return None, ""
    matching = candidate_ids(vectors.lib, request.query, request.album)
    if not matching:
        return None, f"no {request.noun}s match {shlex.join(request.query)}"
    try:
        rows = vectors.matched_rows(matching, request.query)
    except RequestError as none:  # not an error here: an empty answer
        return None, str(none)
    if unembedded := len(matching) - len(rows):
        log.info(
            "{} of the {} matching {} {} no vector yet (beet clap)",
            unembedded, count(len(matching), "track"),
            shlex.join(request.query), "has" if unembedded == 1 else "have",
        )  # fmt: skip
    return rows, ""


def empty_reason(request: QueryRequest) -> str:
    """Why a ranking left nothing to show."""
    noun = request.noun
    if request.min_score is not None:
        return f"no {noun}s score {request.min_score} or more"
    if request.like:
        return f"no {noun}s besides the --like ones"
    return f"no {noun}s to rank"


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
