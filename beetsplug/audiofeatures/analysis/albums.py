"""Album aggregates, kept apart from the tracks' own values.

beets lets album and tracks share flexible attributes both ways:
``Album.store()`` copies an album's attributes onto its tracks, and a
track without a field reads (and is queried by) its album's. So album
values live under names no track uses (``essentia_album_bpm``), are
stored without inheritance, and tracks are read with ``with_album=False``.
Version 0.1.0 stored album values under the track names, which
overwrote every track's values; :func:`repair_album_fields` moves them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

from beets_audiofeatures.essentia.descriptors import (
    AGGREGATED,
    Kind,
    aggregate_album,
)
from beets_audiofeatures.keys import SPELLINGS, spell_key
from beets_audiofeatures.runner import count

if TYPE_CHECKING:
    from beets.library import Album, Item, Library
    from beets.logging import BeetsLogger

#: Album attributes of 0.1.0, by their new names.
OLD_NAMES = {d.field: d.album_field for d in AGGREGATED}
#: The key fields: a track's (``essentia_key``) by its album's name.
KEY_NAMES = {d.field: d.album_field for d in AGGREGATED if d.kind is Kind.KEY}


def own(item: Item, field: str) -> Any:
    """The track's own value, never its album's."""
    return item.get(field, with_album=False)


def _spelled(value: Any, spelling: str) -> Any:
    return (spell_key(str(value), spelling) or value) if value else value


def store_album_aggregates(
    albums: Iterable[Album], spelling: str = SPELLINGS[0]
) -> list[Album]:
    """Each album's aggregates under its own names, its key spelt as
    ``spelling`` asks (whatever the spelling each track's was stored in);
    the tracks' values are left exactly as they are. The albums that got
    values."""
    stored = []
    for album in albums:
        tracks = [
            {
                d.field: own(item, d.field)
                if d.field not in KEY_NAMES
                else _spelled(own(item, d.field), spelling)
                for d in AGGREGATED
            }
            for item in album.items()
        ]
        values = aggregate_album(tracks)
        for name in OLD_NAMES.values():  # no track has it any more
            if name not in values and name in album:
                del album[name]
        album.update(values)
        album.store(inherit=False)  # never copied onto the tracks
        if values:
            stored.append(album)
    return stored


def album_keys_to_respell(
    lib: Library, ids: Collection[int], spelling: str
) -> dict[int, dict[str, str]]:
    """The album keys (``essentia_album_key``) of the albums of the
    tracks ``ids`` spelt otherwise than ``spelling`` asks, re-spelt, by
    album id: a run without ``-a`` stores no album values, yet the
    setting changes their spelling too. Once they are spelt so, one
    look at the album keys."""
    names = list(KEY_NAMES.values())
    marks = ", ".join("?" * len(names))
    found: dict[int, dict[str, str]] = defaultdict(dict)
    with lib.transaction() as tx:
        for album, name, value in tx.query(
            "SELECT entity_id, key, value FROM album_attributes "
            f"WHERE key IN ({marks})",
            names,
        ):
            spelled = spell_key(str(value), spelling)
            if spelled not in (None, value):
                found[album][name] = str(spelled)
        if not found:
            return {}
        wanted = set(ids)
        matched = {
            album
            for track, album in tx.query("SELECT id, album_id FROM items")
            if album in found and track in wanted
        }
    return {album: found[album] for album in matched}


def respell_album_keys(
    lib: Library, changes: dict[int, dict[str, str]]
) -> None:
    """Store ``album_keys_to_respell``'s keys, never on the tracks."""
    for number, values in changes.items():
        album = lib.get_album(number)
        if album is not None:
            album.update(values)
            album.store(inherit=False)


def repair_album_fields(lib: Library, log: BeetsLogger) -> None:
    """Move 0.1.0's album values to their own names, and mark for
    re-analysis the tracks whose values 0.1.0 overwrote with them."""
    marks = ", ".join("?" * len(OLD_NAMES))
    with lib.transaction() as tx:
        rows = tx.query(
            "SELECT entity_id, key, value FROM album_attributes "
            f"WHERE key IN ({marks})",
            list(OLD_NAMES),
        )
        if not rows:
            return
        old: dict[int, dict[str, Any]] = defaultdict(dict)
        for album_id, key, value in rows:
            old[album_id][key] = value
        overwritten = 0
        for album_id, values in old.items():
            for (track,) in tx.query(
                "SELECT id FROM items WHERE album_id = ?", (album_id,)
            ):
                mine: dict[str, Any] = {
                    key: value
                    for key, value in tx.query(
                        "SELECT key, value FROM item_attributes "
                        f"WHERE entity_id = ? AND key IN ({marks})",
                        [track, *OLD_NAMES],
                    )
                }
                # Inheritance wrote every album value onto the track.
                if mine and all(mine.get(k) == v for k, v in values.items()):
                    tx.mutate(
                        "DELETE FROM item_attributes WHERE entity_id = ? "
                        "AND key = 'essentia_analyzed'",
                        (track,),
                    )
                    overwritten += 1
        for name, album_name in OLD_NAMES.items():
            tx.mutate(
                "UPDATE OR REPLACE album_attributes SET key = ? WHERE key = ?",
                (album_name, name),
            )
    log.warning(
        "moved the album values of {} to essentia_album_* fields; {} "
        "that 0.1.0's -a had overwritten will be analysed again by the "
        "next beet essentia",
        count(len(old), "album"),
        count(overwritten, "track"),
    )
