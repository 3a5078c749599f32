"""What ``beet clapradio`` and ``beet clappath`` know about tracks: the
rules from the options and settings, the facts the rules read from each
item (artist, album, tempo, key, recording), the candidate rows, and
the pool of candidates a ranking leaves."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from beets_audiofeatures.clap.duplicates import Evidence
from beets_audiofeatures.clap.playlists import Rules, TrackFacts
from beets_audiofeatures.clap.search import Ranking
from beets_audiofeatures.errors import RequestError
from beets_audiofeatures.keys import Key, parse_key
from beets_audiofeatures.runner import count
from beetsplug.audiofeatures import input_limits
from beetsplug.audiofeatures.library_query import (
    AUDIO_FIELDS,
    CLAP_FILE,
    UID,
    item_fields,
    items_by_id,
    matching_ids,
)
from beetsplug.audiofeatures.query_words import shell_words
from beetsplug.audiofeatures.search.vectors import LibraryVectors
from beetsplug.audiofeatures.settings.clap import ClapSettings

if TYPE_CHECKING:
    from beets.library import Item, Library
    from beets.logging import BeetsLogger

    from beetsplug.audiofeatures.search.vectors import Found

    #: A track as the rules read it: its ``Item``, or the fields of
    #: :data:`RULE_FIELDS` (``item_fields``) where no ``Item`` is built.
    Track = Item | Mapping[str, Any]

#: A candidate: its item's id, its score and each prompt's own score.
Ranked = tuple[int, float, list[float]]
#: The fields ``track_facts`` reads, and those a source key is made of.
RULE_FIELDS = (
    "artist", "album_id", "album", "albumartist", "essentia_bpm", "bpm",
    "essentia_key", "initial_key", "length", "mb_trackid", "acoustid_id",
    UID, CLAP_FILE, *AUDIO_FIELDS,
)  # fmt: skip


class DjRequest(Protocol):
    """What a radio's request says about its DJ rules and candidates."""

    @property
    def bpm_window(self) -> float | None: ...
    @property
    def half_double(self) -> bool: ...
    @property
    def harmonic(self) -> bool: ...
    @property
    def within(self) -> str | None: ...


def playlist_rules(settings: ClapSettings, request: DjRequest) -> Rules:
    """The caps (options over settings) and the DJ rules (options)."""
    window = request.bpm_window
    if window is not None:
        window = input_limits.percentage(window, "--bpm-window")
    if request.half_double and window is None:
        raise RequestError("--half-double needs --bpm-window PCT")
    return Rules(
        max_per_artist=settings.max_per_artist,
        max_per_album=settings.max_per_album,
        bpm_window=window,
        half_double=bool(request.half_double),
        harmonic=bool(request.harmonic),
        duplicates=settings.duplicate_rules,
    )


def tempo_of(essentia_bpm: Any, bpm: Any) -> float | None:
    """The one tempo decision: Essentia's tempo, else beets' ``bpm``;
    None when neither is a positive number."""
    return _number(essentia_bpm) or _number(bpm) or None


def key_text(essentia_key: Any, initial_key: Any) -> str:
    """The one key decision: Essentia's key, else beets' ``initial_key``
    (as written; "" when neither is set)."""
    return str(essentia_key or initial_key or "")


def own(item: Track, name: str) -> Any:
    """A field of the track itself: a rule never reads its album's (and
    asking the album, beets' default, costs a query per track)."""
    if isinstance(item, Mapping):  # ``item_fields``: the track's own
        return item.get(name)
    return item.get(name, with_album=False)


def tempo(item: Track) -> float | None:
    """The track's tempo (``tempo_of``)."""
    return tempo_of(own(item, "essentia_bpm"), own(item, "bpm"))


def musical_key(item: Track) -> Key | None:
    """The track's key (``key_text``), parsed."""
    return parse_key(
        key_text(own(item, "essentia_key"), own(item, "initial_key"))
    )


def track_evidence(item: Track) -> Evidence:
    key = musical_key(item)
    return Evidence(
        length=float(own(item, "length") or 0),
        recording=str(own(item, "mb_trackid") or ""),
        acoustid=str(own(item, "acoustid_id") or ""),
        tempo=tempo(item) or 0.0,
        key="" if key is None else str(key),
    )


def track_facts(item: Track) -> TrackFacts:
    album = ""
    if own(item, "album_id"):
        album = f"album {own(item, 'album_id')}"
    elif own(item, "album"):  # a track beets keeps as a singleton
        album = f"{own(item, 'albumartist')} - {own(item, 'album')}".lower()
    return TrackFacts(
        artist=str(own(item, "artist") or "").strip().lower(),
        album=album,
        bpm=tempo(item),
        key=musical_key(item),
        evidence=track_evidence(item),
    )


def within_ids(within: str | None, lib: Library) -> list[int] | None:
    """The tracks ``--within`` allows (None: every track)."""
    if within is None:
        return None
    if not within.strip():
        raise RequestError(
            "--within needs a beets query, such as --within 'genre:jazz'"
        )
    return matching_ids(lib, shell_words(within, f"--within {within}"))


def evidence_by_id(
    lib: Library, ids: Collection[int] | None = None
) -> dict[int, Evidence]:
    """``track_evidence`` of every item (or of ``ids``), by id, in one SQL
    pass: a library of 100k tracks loads no ``Item``."""
    wanted = None if ids is None else set(ids)
    found = {}
    joins = "".join(
        f"LEFT JOIN item_attributes AS {name} ON {name}.entity_id = "
        f"items.id AND {name}.key = '{field}' "
        for name, field in (
            ("acoustid", "acoustid_id"),
            ("tempo", "essentia_bpm"),
            ("tonic", "essentia_key"),
        )
    )
    with lib.transaction() as tx:
        rows = tx.query(
            "SELECT items.id, items.length, items.mb_trackid, items.bpm, "
            "items.initial_key, acoustid.value, tempo.value, tonic.value "
            f"FROM items {joins}"
        )
        for row in rows:
            number, length, recording, bpm, initial_key = row[:5]
            acoustid, essentia_bpm, essentia_key = row[5:]
            if wanted is not None and number not in wanted:
                continue
            key = parse_key(key_text(essentia_key, initial_key))
            found[number] = Evidence(
                length=_number(length),
                recording=str(recording or ""),
                acoustid=str(acoustid or ""),
                tempo=tempo_of(essentia_bpm, bpm) or 0.0,
                key="" if key is None else str(key),
            )
    return found


def with_dj_fields(
    lib: Library, ids: list[int] | None, rules: Rules, log: BeetsLogger
) -> list[int] | None:
    """The tracks (of ``ids``, default all) that have the tempo and key
    the DJ rules read; the others are left out with a line counting
    them."""
    if not (rules.needs_bpm or rules.needs_key):
        return ids
    kept, missing = [], 0
    for number, evidence in sorted(evidence_by_id(lib, ids).items()):
        if (rules.needs_bpm and not evidence.tempo) or (
            rules.needs_key and not evidence.key
        ):
            missing += 1
        else:
            kept.append(number)
    if missing:
        needed = " and ".join(
            name
            for name, needed in (
                ("tempo", rules.needs_bpm), ("key", rules.needs_key)
            )
            if needed
        )  # fmt: skip
        log.info(
            "left out {} without a {} (beet essentia finds them)",
            count(missing, "track"), needed,
        )  # fmt: skip
    return kept


def _number(value: Any) -> float:
    """A positive number from the database; 0 for anything else."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if number > 0 else 0.0


def with_items(lib: Library, ranked: Sequence[Ranked]) -> list[Found]:
    """These candidates, in this order, with their items (one that left
    the library since its facts were read is left out)."""
    items = items_by_id(lib, [number for number, _, _ in ranked])
    return [
        (items[number], score, scores)
        for number, score, scores in ranked
        if number in items
    ]


@dataclass
class Pool:
    """Candidates of a ranking that are current: their ids and scores
    (per prompt too), index rows and vectors, and what the rules read.
    Their items are loaded only for the tracks a walk picks
    (``with_items``)."""

    ranked: list[Ranked]
    rows: np.ndarray
    vectors: np.ndarray
    facts: list[TrackFacts]

    @classmethod
    def of(
        cls, vectors: LibraryVectors, ranking: Ranking, row_of: dict[int, int]
    ) -> Pool:
        """The current candidates of ``ranking``, which ranked the rows
        ``row_of`` maps from their ids: each keeps its own row. The
        fields the rules read come in one query (``item_fields``): as
        ``LibraryVectors.results`` and ``track_facts`` of their items
        would find them, without building an ``Item`` for each."""
        numbers = ranking.ids.tolist()
        fields = item_fields(vectors.lib, numbers, RULE_FIELDS)
        ranked: list[Ranked] = []
        facts = []
        for position, number in enumerate(numbers):
            track = fields.get(number)
            if track is None or not vectors.is_current(number, track):
                continue  # its item is gone, or the vector is stale
            scores = [float(s) for s in ranking.per_prompt[position]]
            ranked.append((number, float(ranking.scores[position]), scores))
            facts.append(track_facts(track))
        rows = np.array([row_of[number] for number, _, _ in ranked], np.int64)
        return cls(
            ranked,
            rows,
            np.asarray(vectors.index.matrix[rows], np.float32),
            facts,
        )
