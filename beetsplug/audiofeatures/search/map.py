"""The map of a library's CLAP vectors: ``beet clap --map`` computes it,
the web page and ``beet clapmap`` draw it. The map is recomputed when
the tracks it shows are no longer exactly the current ones."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from beets.library import Item

from beets_audiofeatures.clap.index import Index
from beets_audiofeatures.clap.projection import (
    KEY_DTYPE,
    Projection,
    load_projection,
    project,
    save_projection,
)
from beets_audiofeatures.clap.store import EmbeddingStore
from beets_audiofeatures.errors import RequestError
from beetsplug.audiofeatures.library_query import source_keys
from beetsplug.audiofeatures.query_words import is_field
from beetsplug.audiofeatures.search.vectors import current_rows

if TYPE_CHECKING:
    from beets.library import Library
    from beets.logging import BeetsLogger

#: Colour fields offered on the page (any other field of the library can
#: be typed in).
SUGGESTED_COLOURS = (
    "genres", "year", "essentia_bpm", "essentia_key", "essentia_danceability",
    "artist", "album", "format",
)  # fmt: skip
#: A text field colours its most frequent values; the rest are "other".
MOST_FREQUENT = 20


def library_map(
    lib: Library,
    store: EmbeddingStore,
    index: Index,
    sample: int,
    log: BeetsLogger,
    compute: bool = True,
    keys: Mapping[int, str] | None = None,
) -> Projection | None:
    """The map of every current vector: the saved one while it still
    holds exactly the current tracks, else (with ``compute``) a new one,
    saved beside the index. ``keys``: every item's ``source_keys``, when
    the caller has them."""
    if keys is None:
        keys = source_keys(lib)
    rows = current_rows(lib, index, keys=keys)
    ids = np.asarray(index.ids[rows], np.int64)
    current = {number: keys[number] for number in ids.tolist()}
    saved = load_projection(store.folder)
    if saved is not None and saved.is_current(current):
        return saved
    if not compute:
        return None
    log.info("mapping {} vectors (UMAP on at most {})", len(rows), sample)
    started = time.monotonic()
    xy = project(
        len(rows),
        lambda positions: np.asarray(index.matrix[rows[positions]]),
        sample=sample,
    )
    projection = Projection(
        ids, np.array([current[n] for n in ids.tolist()], KEY_DTYPE), xy
    )
    save_projection(store.folder, projection)
    log.info(
        "mapped {} tracks in {:.1f} s",
        len(projection),
        time.monotonic() - started,
    )
    return projection


def track_labels(lib: Library, ids: Sequence[int]) -> dict[int, str]:
    """``artist – title`` of each item, by id, in one SQL pass."""
    wanted = set(ids)
    with lib.transaction() as tx:
        rows = tx.query("SELECT id, artist, title FROM items")
    return {row[0]: f"{row[1]} – {row[2]}" for row in rows if row[0] in wanted}


def field_values(
    lib: Library, field: str, ids: Sequence[int]
) -> dict[int, Any]:
    """Each item's value of a fixed or flexible field, by id, in one SQL
    pass (items without the field are left out)."""
    if not is_field(lib, field) or not field.replace("_", "").isalnum():
        raise RequestError(f"{field!r} is not a field of this library")
    wanted = set(ids)
    kind = Item._type(field)
    with lib.transaction() as tx:
        if field in Item._fields:
            rows = tx.query(f"SELECT id, {field} FROM items")  # a known name
        else:
            rows = tx.query(
                "SELECT entity_id, value FROM item_attributes WHERE key = ?",
                (field,),
            )
    values = {}
    for number, value in rows:
        if number in wanted and value not in (None, ""):
            read = kind.from_sql(value)
            if isinstance(read, list | tuple):  # genres: one text
                read = ", ".join(map(str, read))
            if read not in (None, ""):
                values[number] = read
    return values


def colours(lib: Library, field: str, ids: Sequence[int]) -> dict[str, Any]:
    """What the page colours the points by: numbers (a colour scale), or
    the most frequent texts (categories; the rest "other"); None where
    an item has no value."""
    values = field_values(lib, field, ids)
    present = [values[n] for n in ids if n in values]
    numeric = bool(present) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in present
    )
    if numeric:
        return {
            "field": field,
            "numeric": True,
            "values": [values.get(n) for n in ids],
        }
    counts: dict[str, int] = {}
    for value in present:
        counts[str(value)] = counts.get(str(value), 0) + 1
    kept = set(sorted(counts, key=lambda v: -counts[v])[:MOST_FREQUENT])
    return {
        "field": field,
        "numeric": False,
        "values": [
            None
            if n not in values
            else str(values[n])
            if str(values[n]) in kept
            else "other"
            for n in ids
        ],
    }


def map_payload(
    lib: Library, projection: Projection, colour: str | None
) -> dict[str, Any]:
    """The map as the page draws it."""
    ids = projection.ids.tolist()
    labels = track_labels(lib, ids)
    xy = np.round(projection.xy.astype(np.float64), 4)
    return {
        "ids": ids,
        "x": xy[:, 0].tolist(),
        "y": xy[:, 1].tolist(),
        "labels": [labels.get(n, "") for n in ids],
        "colour": colours(lib, colour, ids) if colour else None,
    }
