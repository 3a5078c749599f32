"""The library as the API describes it: songs (``Child``), albums
(``AlbumID3``) and artists (``ArtistID3``), and the lists the browsing
methods page through, read with one SQL query each (a page of 500 of
100,000 tracks loads 500 items, not 100,000)."""

from __future__ import annotations

import datetime
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from beets.dbcore.types import MULTI_VALUE_DELIMITER

from beetsplug.audiofeatures.library_query import items_by_id
from beetsplug.audiofeatures.web.browser_audio import MIME_TYPES
from beetsplug.audiofeatures.web.library_search import database_stamp
from beetsplug.audiofeatures.web.subsonic import ids
from beetsplug.audiofeatures.web.subsonic.responses import not_found

if TYPE_CHECKING:
    from beets.library import Item, Library

#: The columns an album's entry reads, with its tracks' count and length.
ALBUM_COLUMNS = (
    "a.id, a.album, a.albumartist, a.year, a.genres, a.added, "
    "COUNT(i.id), COALESCE(SUM(i.length), 0)"
)
ALBUMS_WITH_TRACKS = "albums a JOIN items i ON i.album_id = a.id"


def iso_time(stamp: Any) -> str | None:
    if not stamp:
        return None
    moment = datetime.datetime.fromtimestamp(float(stamp), datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def genre_names(stored: Any) -> list[str]:
    if isinstance(stored, list):
        return [g for g in stored if g]
    if not stored:
        return []
    return [g for g in str(stored).split(MULTI_VALUE_DELIMITER) if g]


def song(item: Item) -> dict[str, Any]:
    """A track as a ``Child``: what the library knows, never its path."""
    suffix = Path(os.fsdecode(item.path)).suffix.lower()
    album_number = int(item.album_id or 0)
    genres = genre_names(item.get("genres"))
    try:
        size = os.path.getsize(item.path)
    except OSError:
        size = None
    play_count = item.get("play_count", with_album=False)
    return {
        "id": ids.song_id(int(item.id or 0)),
        "parent": ids.album_id(album_number) if album_number else None,
        "isDir": False,
        "title": str(item.title or ""),
        "album": str(item.album or "") or None,
        "artist": str(item.artist or "") or None,
        "track": int(item.track) if item.track else None,
        "discNumber": int(item.disc) if item.disc else None,
        "year": int(item.year) if item.year else None,
        "genre": genres[0] if genres else None,
        "genres": [{"name": g} for g in genres],
        "coverArt": ids.album_id(album_number)
        if album_number
        else ids.song_id(int(item.id or 0)),
        "size": size,
        "contentType": MIME_TYPES.get(suffix, "application/octet-stream"),
        "suffix": suffix.lstrip(".") or None,
        "duration": round(float(item.length or 0)),
        "bitRate": round(int(item.bitrate or 0) / 1000) or None,
        "samplingRate": int(item.samplerate) if item.samplerate else None,
        "bitDepth": int(item.bitdepth) if item.bitdepth else None,
        "channelCount": int(item.channels) if item.channels else None,
        "isVideo": False,
        "type": "music",
        "mediaType": "song",
        "albumId": ids.album_id(album_number) if album_number else None,
        "artistId": ids.named_id(ids.ARTIST, str(item.artist or "")),
        "created": iso_time(item.added),
        "playCount": int(play_count) if play_count else 0,
        "played": iso_time(item.get("last_played", with_album=False)),
        "musicBrainzId": str(item.mb_trackid or "") or None,
    }


def album(row: Sequence[Any]) -> dict[str, Any]:
    """An album (a row of :data:`ALBUM_COLUMNS`) as an ``AlbumID3``."""
    number, name, artist, year, genres, added, songs, length = row
    genre = genre_names(genres)
    return {
        "id": ids.album_id(number),
        "name": str(name or ""),
        "title": str(name or ""),
        "artist": str(artist or ""),
        "artistId": ids.named_id(ids.ARTIST, str(artist or "")),
        "coverArt": ids.album_id(number),
        "songCount": int(songs),
        "duration": round(float(length or 0)),
        "created": iso_time(added) or "1970-01-01T00:00:00Z",
        "year": int(year) if year else None,
        "genre": genre[0] if genre else None,
        "genres": [{"name": g} for g in genre],
    }


def artist(name: str, albums: int) -> dict[str, Any]:
    return {
        "id": ids.named_id(ids.ARTIST, name),
        "name": name,
        "albumCount": albums,
    }


class Catalogue:
    """The lists the browsing methods answer from, for one library; the
    artists' names (to find one by its id) read again only when the
    database changed."""

    def __init__(self, lib: Library) -> None:
        self.lib = lib
        self._names: dict[str, str] = {}
        self._stamp: tuple[int, ...] | None = None
        self._lock = threading.Lock()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.lib.transaction() as tx:
            return list(tx.query(sql, tuple(params)))

    def songs(self, numbers: Sequence[int]) -> list[dict[str, Any]]:
        """These tracks as ``Child`` entries, in this order."""
        found = items_by_id(self.lib, list(numbers))
        return [song(found[n]) for n in numbers if n in found]

    def item(self, sent: str) -> Item:
        number = ids.song_number(sent)
        item = self.lib.get_item(number)
        if item is None:
            raise not_found(f"song {sent!r}")
        return item

    def song_numbers(
        self, where: str = "1", params: Sequence[Any] = (), order: str = "id",
        count: int = 10, offset: int = 0,
    ) -> list[int]:  # fmt: skip
        return [
            row[0]
            for row in self.rows(
                f"SELECT id FROM items WHERE {where} ORDER BY {order} "
                "LIMIT ? OFFSET ?",
                [*params, count, offset],
            )
        ]

    def albums(
        self, where: str = "1", params: Sequence[Any] = (),
        order: str = "a.id", count: int = 10, offset: int = 0,
    ) -> list[dict[str, Any]]:  # fmt: skip
        rows = self.rows(
            f"SELECT {ALBUM_COLUMNS} FROM {ALBUMS_WITH_TRACKS} WHERE {where} "
            f"GROUP BY a.id ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, count, offset],
        )
        return [album(row) for row in rows]

    def album(self, sent: str) -> dict[str, Any]:
        found = self.albums("a.id = ?", [ids.album_number(sent)], count=1)
        if not found:
            raise not_found(f"album {sent!r}")
        return found[0]

    def album_artists(self) -> list[tuple[str, int]]:
        """Each album artist and their number of albums, by name."""
        rows = self.rows(
            "SELECT albumartist, COUNT(*) FROM albums "
            "GROUP BY albumartist ORDER BY albumartist COLLATE NOCASE"
        )
        return [(str(name or ""), int(albums)) for name, albums in rows]

    def artist_name(self, sent: str) -> str:
        """The name of the artist (of an album or of a track) an id
        stands for."""
        stamp = database_stamp(self.lib.path)
        with self._lock:
            if stamp is None or stamp != self._stamp:
                rows = self.rows(
                    "SELECT albumartist FROM albums UNION "
                    "SELECT artist FROM items"
                )
                self._names = {
                    ids.named_id(ids.ARTIST, str(n or "")): str(n or "")
                    for (n,) in rows
                }
                self._stamp = stamp
            name = self._names.get(sent)
        if name is None:
            raise not_found(f"artist {sent!r}")
        return name

    def genres(self) -> list[dict[str, Any]]:
        """Each genre with its numbers of songs and albums."""
        songs: dict[str, int] = {}
        albums: dict[str, set[int]] = {}
        for stored, album_number in self.rows(
            "SELECT genres, album_id FROM items"
        ):
            for genre in genre_names(stored):
                songs[genre] = songs.get(genre, 0) + 1
                if album_number:
                    albums.setdefault(genre, set()).add(album_number)
        return [
            {"value": g, "songCount": n, "albumCount": len(albums.get(g, ()))}
            for g, n in sorted(songs.items(), key=lambda e: e[0].casefold())
        ]


#: SQL that holds when the ``genres`` column holds the genre parameter.
HAS_GENRE = "instr(? || {column} || ?, ? || ? || ?) > 0"


def genre_clause(column: str, genre: str) -> tuple[str, list[str]]:
    mark = MULTI_VALUE_DELIMITER
    return HAS_GENRE.format(column=column), [mark, mark, mark, genre, mark]
