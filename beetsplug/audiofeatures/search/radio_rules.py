"""What ``beet clapradio`` and ``beet clappath`` know about tracks: the
rules from the options and settings, the facts the rules read from each
item (artist, album, tempo, key, recording), the candidate rows, and
the pool of candidates a ranking leaves."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from beets.exceptions import UserError

from beets_audiofeatures.clap.duplicates import Evidence
from beets_audiofeatures.clap.index import Index
from beets_audiofeatures.clap.playlists import Rules, TrackFacts
from beets_audiofeatures.clap.search import Ranking
from beets_audiofeatures.keys import Key, parse_key
from beets_audiofeatures.runner import count
from beetsplug.audiofeatures import input_limits
from beetsplug.audiofeatures.library_query import matching_ids
from beetsplug.audiofeatures.search.vectors import current_results, like_terms
from beetsplug.audiofeatures.settings.clap import ClapSettings

if TYPE_CHECKING:
    from beets.library import Item, Library


def playlist_rules(settings: ClapSettings, opts: Any) -> Rules:
    """The caps (options over settings) and the DJ rules (options)."""
    window = opts.bpm_window
    if window is not None:
        window = input_limits.percentage(window, "--bpm-window")
    if opts.half_double and window is None:
        raise UserError("--half-double needs --bpm-window PCT")
    return Rules(
        max_per_artist=settings.max_per_artist,
        max_per_album=settings.max_per_album,
        bpm_window=window,
        half_double=bool(opts.half_double),
        harmonic=bool(opts.harmonic),
        duplicates=settings.duplicate_rules,
    )


def tempo(item: Item) -> float | None:
    """Essentia's tempo, else beets' ``bpm``; None when neither is set."""
    return _number(item.get("essentia_bpm")) or _number(item.get("bpm")) or None


def musical_key(item: Item) -> Key | None:
    """Essentia's key, else beets' ``initial_key``."""
    return parse_key(
        str(item.get("essentia_key") or item.get("initial_key") or "")
    )


def track_evidence(item: Item) -> Evidence:
    key = musical_key(item)
    return Evidence(
        length=float(item.get("length") or 0),
        recording=str(item.get("mb_trackid") or ""),
        acoustid=str(item.get("acoustid_id") or ""),
        tempo=tempo(item) or 0.0,
        key="" if key is None else str(key),
    )


def track_facts(item: Item) -> TrackFacts:
    album = ""
    if item.get("album_id"):
        album = f"album {item.get('album_id')}"
    elif item.get("album"):  # a track beets keeps as a singleton
        album = f"{item.get('albumartist')} - {item.get('album')}".lower()
    return TrackFacts(
        artist=str(item.get("artist") or "").strip().lower(),
        album=album,
        bpm=tempo(item),
        key=musical_key(item),
        evidence=track_evidence(item),
    )


def within_ids(opts: Any, lib: Library) -> list[int] | None:
    """The tracks ``--within`` allows (None: every track)."""
    if opts.within is None:
        return None
    if not opts.within.strip():
        raise UserError(
            "--within needs a beets query, such as --within 'genre:jazz'"
        )
    return matching_ids(lib, like_terms(opts.within))


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
            key = parse_key(str(essentia_key or initial_key or ""))
            found[number] = Evidence(
                length=_number(length),
                recording=str(recording or ""),
                acoustid=str(acoustid or ""),
                tempo=_number(essentia_bpm) or _number(bpm),
                key="" if key is None else str(key),
            )
    return found


def with_dj_fields(
    lib: Library, ids: list[int] | None, rules: Rules, log: Any
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


@dataclass
class Pool:
    """Candidates of a ranking that are current: their items, scores
    (per prompt too), index rows and vectors, and what the rules read."""

    found: list[tuple[Item, float, list[float]]]
    rows: np.ndarray
    vectors: np.ndarray
    facts: list[TrackFacts]

    @classmethod
    def of(cls, lib: Library, index: Index, ranking: Ranking) -> Pool:
        found = current_results(lib, index, ranking, len(ranking.ids))
        rows = np.array(
            [index.row(item.id or 0) for item, _, _ in found], np.int64
        )
        return cls(
            found,
            rows,
            np.asarray(index.matrix[rows], np.float32),
            [track_facts(item) for item, _, _ in found],
        )
