"""What the page asks of the library: ranked tracks for a prompt, a
beets query and a seed track, and the radio from a track, described as
plain values. The ranking and the radio are ``search``'s; the text model
loads once per server."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from beets_audiofeatures.clap.index import Index, SourceKeys
from beets_audiofeatures.clap.prompts import ModelHolder, prompt_vectors
from beets_audiofeatures.clap.search import Ranking, rank
from beets_audiofeatures.clap.store import EmbeddingStore
from beets_audiofeatures.errors import RequestError
from beetsplug.audiofeatures import input_limits
from beetsplug.audiofeatures.input_limits import MOST_INTEGER
from beetsplug.audiofeatures.library_query import (
    items_by_id,
    matching_ids,
    source_keys,
)
from beetsplug.audiofeatures.query_words import shell_words
from beetsplug.audiofeatures.search.radio import (
    RadioLibrary,
    RadioRequest,
    choose_radio,
)
from beetsplug.audiofeatures.search.radio_rules import key_text, tempo_of
from beetsplug.audiofeatures.search.vectors import (
    LibraryVectors,
    seed_vector,
    stored_index,
)
from beetsplug.audiofeatures.settings.clap import ClapSettings

if TYPE_CHECKING:
    from beets.library import Item, Library
    from beets.logging import BeetsLogger

#: The most results one request may ask for.
MOST_RESULTS = 500


@dataclass(frozen=True)
class Track:
    """One result as the page shows it (tag text as it is: the page
    escapes it)."""

    id: int
    title: str
    artist: str
    album: str
    year: int | None
    bpm: float | None
    key: str
    length: float
    score: float | None

    @classmethod
    def of(cls, item: Item, score: float | None = None) -> Track:
        def field(name: str) -> Any:  # the track's own, not its album's
            return item.get(name, with_album=False)

        bpm = tempo_of(field("essentia_bpm"), field("bpm"))
        return cls(
            id=int(item.id or 0),
            title=str(item.title or ""),
            artist=str(item.artist or ""),
            album=str(item.album or ""),
            year=int(item.year) if item.year else None,
            bpm=round(float(bpm), 1) if bpm else None,
            key=key_text(field("essentia_key"), field("initial_key")),
            length=round(float(item.length or 0), 1),
            score=None if score is None else round(score, 4),
        )

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "audio": f"/audio/{self.id}"}


def files_stamp(
    main: str | bytes | os.PathLike[str],
    beside: str | bytes | os.PathLike[str],
) -> tuple[int, ...] | None:
    """Which file ``main`` is (a replaced one is another), when and how
    big, and when and how big the file ``beside`` it is (if any): what a
    writer changes. None without ``main``."""
    try:
        info = os.stat(main)
    except OSError:
        return None
    stamp = [info.st_ino, info.st_mtime_ns, info.st_size]
    try:
        other = os.stat(beside)
    except OSError:
        return tuple(stamp)
    return (*stamp, other.st_mtime_ns, other.st_size)


def database_stamp(
    path: str | bytes | os.PathLike[str],
) -> tuple[int, ...] | None:
    """The database file's and its write-ahead log's ``files_stamp``;
    None for a database without a file."""
    database = os.fsencode(os.fspath(path))
    return files_stamp(database, database + b"-wal")


def index_stamp(folder: Path) -> tuple[int, ...] | None:
    """A store's ``index.json`` (a new index is a new file) and its
    journal (``files_stamp``); None without an index."""
    return files_stamp(folder / "index.json", folder / "journal")


def query_terms(text: str) -> list[str]:
    """A beets query typed in one box, split as a shell splits it."""
    return shell_words(text, f"invalid query {text!r}")


class LibrarySearch:
    """The library, its store for the configured model, and the text
    model (loaded by the first prompt that is not in the prompt cache,
    once)."""

    def __init__(
        self, lib: Library, settings: ClapSettings, log: BeetsLogger
    ) -> None:
        self.lib = lib
        self.settings = settings
        self.log = log
        self.model: ModelHolder = settings.text_model(log)
        self._model_lock = threading.Lock()
        self._keys = SourceKeys({})
        self._keys_stamp: tuple[int, ...] | None = None
        self._keys_lock = threading.Lock()
        self._index: tuple[EmbeddingStore, Index] | None = None
        self._index_stamp: tuple[int, ...] | None = None
        self._index_lock = threading.Lock()

    def source_keys(self) -> SourceKeys:
        """Every item's source key, read again only when the database
        file changed (reading them is most of a filtered search's time
        on a big library)."""
        stamp = database_stamp(self.lib.path)
        with self._keys_lock:
            if stamp is None or stamp != self._keys_stamp:
                self._keys = source_keys(self.lib)
                self._keys_stamp = stamp
            return self._keys

    @property
    def store(self) -> EmbeddingStore:
        return self.settings.store(self.lib)

    def index(self) -> tuple[EmbeddingStore, Index]:
        """The store and its up-to-date index (tracks embedded while the
        server runs are found), read again only when the store's
        ``index.json`` or journal changed: every writer replaces the one
        or appends to the other."""
        store = self.store
        stamp = index_stamp(store.folder)
        with self._index_lock:
            if (
                self._index is None
                or stamp is None
                or stamp != self._index_stamp
            ):
                self._index = stored_index(self.settings, self.lib)
                self._index_stamp = stamp
            return self._index

    def vectors(self) -> LibraryVectors:
        """The current vectors, with the source keys this server keeps."""
        store, index = self.index()
        return LibraryVectors(self.lib, store, index, self.source_keys)

    def item(self, item_id: int) -> Item:
        item = None
        if 1 <= item_id <= MOST_INTEGER:  # SQLite would overflow
            item = self.lib.get_item(item_id)
        if item is None:
            raise RequestError(f"no track {item_id} in the library", 404)
        return item

    def tracks(self, ids: list[int]) -> list[Track]:
        """These items, in this order (ids not in the library left out)."""
        found = items_by_id(self.lib, ids[:MOST_RESULTS])
        return [Track.of(found[n]) for n in ids if n in found]

    def search(
        self,
        prompt: str,
        query: str,
        like: int | None,
        limit: int,
        as_typed: bool = False,
    ) -> list[Track]:
        """The best ``limit`` current tracks for the prompt (translated,
        unless ``as_typed``) and the seed track, among those the query
        matches; with neither, the query's first tracks, unranked."""
        limit = max(1, min(limit, MOST_RESULTS))
        terms = query_terms(query)
        prompt = input_limits.prompt(prompt.strip(), "the prompt")
        if not prompt and like is None:
            if not terms:
                return []
            return self.tracks(matching_ids(self.lib, terms)[:limit])
        vectors = self.vectors()
        rows = None
        if terms:
            matching = matching_ids(self.lib, terms)
            if not matching:
                return []
            rows = vectors.rows(matching)
        targets = []
        if prompt:
            with self._model_lock:  # one text model, one request at a time
                targets.append(
                    prompt_vectors(
                        vectors.store, self.model, [prompt], as_typed
                    )
                )
        exclude = None
        if like is not None:
            self.item(like)
            exclude = vectors.matched_rows([like], [f"id:{like}"])
            targets.append(seed_vector(vectors.index, exclude))
        if rows is not None and not len(rows):
            return []

        def ranked(candidates: int | None) -> Ranking:
            return rank(
                vectors.index, np.concatenate(targets), rows=rows,
                exclude=exclude, limit=candidates,
            )  # fmt: skip

        found = vectors.best_items(ranked, limit)
        return [Track.of(item, score) for item, score, _ in found]

    def english(self, prompt: str, as_typed: bool = False) -> str | None:
        """The English a prompt was searched as, when it was translated
        (None: as typed), to show beside its results."""
        translation = self.model.translation
        if translation is None or as_typed:
            return None
        return translation.translated.get(prompt.strip())

    def radio(self, item_id: int, query: str, limit: int) -> list[Track]:
        """``beet clapradio id:ITEM_ID`` with its defaults (a flowing walk,
        at most two tracks per artist and one per album, no second
        version of a recording), among the tracks the query matches."""
        self.item(item_id)
        query_terms(query)  # a bad query is a 400 before any work
        request = RadioRequest(
            seeds=(f"id:{item_id}",),
            radio_length=max(1, min(limit, MOST_RESULTS)),
            within=query or None,
        )
        radio = RadioLibrary(self.settings.view, self.log, self.lib, request)
        return [Track.of(item, score) for item, score, _ in choose_radio(radio)]
