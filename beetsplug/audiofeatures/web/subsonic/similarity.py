"""Similar songs from the CLAP vectors: ``getSimilarSongs`` (a radio
around a song, an album or an artist), ``getSonicSimilarTracks`` (the
nearest songs, best first) and ``findSonicPath`` (``beet clappath``).
The radio's rules hold (caps per artist and album, no second version of
a recording, never a seed itself).

The ``similarity`` of a ``sonicMatch`` is the spec's (1.0 the same
recording, 0.0 the most different): ``(1 + cosine) / 2`` of the CLAP
vectors of the song and the query song (the start song, for a path),
so an identical vector is 1 and an opposite one 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from beetsplug.audiofeatures.search.radio import (
    RadioLibrary,
    RadioRequest,
    choose_radio,
    radio_tracks,
    walk_path,
)
from beetsplug.audiofeatures.web.subsonic import ids
from beetsplug.audiofeatures.web.subsonic.catalogue import song, songs

if TYPE_CHECKING:
    from beets.library import Item

    from beetsplug.audiofeatures.web.library_search import LibrarySearch


SONIC_POOL_PER_TRACK = 3
SONIC_POOL_EXTRA = 20


def radio_library(search: LibrarySearch, request: RadioRequest) -> RadioLibrary:
    """The radio service over the server's library, with the index and
    source keys it keeps."""
    return RadioLibrary(
        search.settings.view, search.log, search.lib, request,
        search.source_keys, search.index,
    )  # fmt: skip


def radio_items(
    search: LibrarySearch, seeds: tuple[str, ...], count: int, ranked: bool
) -> list[Item]:
    """The radio around the tracks ``seeds`` (one beets query) matches."""
    request = RadioRequest(seeds=seeds, radio_length=count, ranked=ranked)
    radio = radio_library(search, request)
    return [item for item, _, _ in choose_radio(radio)]


def similarity(cosine: float) -> float:
    return round(min(1.0, max(0.0, (1.0 + cosine) / 2.0)), 4)


def cosines(
    radio: RadioLibrary, query_id: int, numbers: list[int]
) -> dict[int, float]:
    """Each track's cosine to the query song, from their vectors."""
    row_of = radio.row_of(radio.vectors.rows([query_id, *numbers]))
    matrix = radio.vectors.index.matrix
    query = np.asarray(matrix[row_of[query_id]], np.float32)
    return {
        n: float(np.asarray(matrix[row_of[n]], np.float32) @ query)
        for n in numbers
    }


def sonic_matches(
    radio: RadioLibrary, query_id: int, numbers: list[int]
) -> list[dict[str, Any]]:
    """These tracks (those still in the library), each a ``sonicMatch``
    scored against the query song."""
    scored = cosines(radio, query_id, numbers)
    return [
        {
            "entry": entry,
            "similarity": similarity(scored[ids.song_number(entry["id"])]),
        }
        for entry in songs(radio.lib, numbers)
    ]


def sonic_similar(
    search: LibrarySearch, item: Item, count: int
) -> list[dict[str, Any]]:
    """``getSonicSimilarTracks``: the nearest tracks, most similar first."""
    number = int(item.id or 0)
    # The nearest few, ranked: a small pool first (the radio ranks more
    # when the rules leave too few).
    request = RadioRequest(
        seeds=(f"id:{number}",), radio_length=count, ranked=True,
        pool=count * SONIC_POOL_PER_TRACK + SONIC_POOL_EXTRA,
    )  # fmt: skip
    radio = radio_library(search, request)
    chosen = [found for found, _, _ in radio_tracks(radio)]
    matches = sonic_matches(radio, number, chosen)
    matches.sort(key=lambda match: -match["similarity"])
    return matches


def sonic_path(
    search: LibrarySearch, start: Item, end: Item, count: int
) -> list[dict[str, Any]]:
    """``findSonicPath``: from the start song to the end song, each
    scored against the start."""
    first, last = int(start.id or 0), int(end.id or 0)
    request = RadioRequest(radio_length=count)
    radio = radio_library(search, request)
    if first == last:
        radio.vectors.seed_rows([f"id:{first}"])  # a song without a vector
        return [{"entry": song(start), "similarity": 1.0}]
    found = walk_path(radio, [[f"id:{first}"], [f"id:{last}"]])
    return sonic_matches(
        radio, first, [int(item.id or 0) for item, _, _ in found]
    )
