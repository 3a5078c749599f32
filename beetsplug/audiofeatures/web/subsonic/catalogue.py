"""The library as the API describes it: songs (``Child``), albums
(``AlbumID3``) and artists (``ArtistID3``), and the lists the browsing
methods page through, read with one SQL query each (a page of 500 of
100,000 tracks reads the fields of 500, and builds no beets ``Item``)."""

from __future__ import annotations

import datetime
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from beets.dbcore.types import MULTI_VALUE_DELIMITER

from beetsplug.audiofeatures.library_query import CHUNK, item_fields
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


def file_suffix(path: bytes) -> str:
    """The file's suffix, lowercase, as ``Path(path).suffix`` (".mp3";
    "" for none): without a ``Path`` per song (a sync lists 500)."""
    name = os.path.basename(os.fsdecode(path).rstrip("/"))
    dot = name.rfind(".")
    return name[dot:].lower() if 0 < dot < len(name) - 1 else ""


#: The fields of a track a ``Child`` reads (``item_fields``).
SONG_FIELDS = (
    "path", "album_id", "genres", "title", "album", "artist", "track",
    "disc", "year", "length", "bitrate", "samplerate", "bitdepth",
    "channels", "added", "mb_trackid", "play_count", "last_played",
)  # fmt: skip


def song(item: Item) -> dict[str, Any]:
    """A track (an ``Item``) as a ``Child``: ``song_entry`` of its own
    fields."""
    fields = {name: item.get(name, with_album=False) for name in SONG_FIELDS}
    return song_entry(int(item.id or 0), fields)


def song_entry(number: int, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A track (its id and :data:`SONG_FIELDS`) as a ``Child``: what the
    library knows, never its path."""
    path = fields["path"]
    suffix = file_suffix(path)
    album_number = int(fields["album_id"] or 0)
    genres = genre_names(fields["genres"])
    try:
        size = os.path.getsize(path)
    except OSError:
        size = None
    play_count = fields["play_count"]
    artist_name = str(fields["artist"] or "")
    return {
        "id": ids.song_id(number),
        "parent": ids.album_id(album_number) if album_number else None,
        "isDir": False,
        "title": str(fields["title"] or ""),
        "album": str(fields["album"] or "") or None,
        "artist": artist_name or None,
        "track": int(fields["track"]) if fields["track"] else None,
        "discNumber": int(fields["disc"]) if fields["disc"] else None,
        "year": int(fields["year"]) if fields["year"] else None,
        "genre": genres[0] if genres else None,
        "genres": [{"name": g} for g in genres],
        "coverArt": ids.album_id(album_number)
        if album_number
        else ids.song_id(number),
        "size": size,
        "contentType": MIME_TYPES.get(suffix, "application/octet-stream"),
        "suffix": suffix.lstrip(".") or None,
        "duration": round(float(fields["length"] or 0)),
        "bitRate": round(int(fields["bitrate"] or 0) / 1000) or None,
        "samplingRate": int(fields["samplerate"])
        if fields["samplerate"]
        else None,
        "bitDepth": int(fields["bitdepth"]) if fields["bitdepth"] else None,
        "channelCount": int(fields["channels"]) if fields["channels"] else None,
        "isVideo": False,
        "type": "music",
        "mediaType": "song",
        "albumId": ids.album_id(album_number) if album_number else None,
        "artistId": ids.named_id(ids.ARTIST, artist_name),
        "created": iso_time(fields["added"]),
        "playCount": int(play_count) if play_count else 0,
        "played": iso_time(fields["last_played"]),
        "musicBrainzId": str(fields["mb_trackid"] or "") or None,
    }


def songs(lib: Library, numbers: Sequence[int]) -> list[dict[str, Any]]:
    """These tracks as ``Child`` entries, in this order (those still in
    the library)."""
    found = item_fields(lib, list(numbers), SONG_FIELDS)
    return [song_entry(n, found[n]) for n in numbers if n in found]


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
    artists' names (to find one by its id) and the album artists read
    again only when the database changed."""

    def __init__(self, lib: Library) -> None:
        self.lib = lib
        self._held: dict[str, tuple[tuple[int, ...], Any]] = {}
        self._lock = threading.Lock()

    def fresh(self, what: str, read: Callable[[], Any]) -> Any:
        """``read()``, kept until the database's files change (a stat,
        not a query, per call); read each time for a database without a
        file. Callers never change what it returns."""
        stamp = database_stamp(self.lib.path)
        with self._lock:
            held = self._held.get(what)
            if stamp is None or held is None or held[0] != stamp:
                value = read()
                if stamp is not None:
                    self._held[what] = (stamp, value)
                return value
            return held[1]

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.lib.transaction() as tx:
            return list(tx.query(sql, tuple(params)))

    def songs(self, numbers: Sequence[int]) -> list[dict[str, Any]]:
        """These tracks as ``Child`` entries, in this order (read with
        one query a few hundred, no ``Item`` built: a client's sync asks
        for 500 at a time)."""
        return songs(self.lib, numbers)

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
        """A page of the albums with tracks that ``where`` (on ``a``,
        the albums table) keeps, in ``order``. The page is chosen on the
        albums table and only its albums' tracks are counted: counting
        every album's, to keep 20, took most of a client's sync."""
        found: dict[int, Sequence[Any]] = {}
        with self.lib.transaction() as tx:
            page = [
                row[0]
                for row in tx.query(
                    f"SELECT a.id FROM albums a WHERE ({where}) AND EXISTS "
                    "(SELECT 1 FROM items i WHERE i.album_id = a.id) "
                    f"ORDER BY {order} LIMIT ? OFFSET ?",
                    (*params, count, offset),
                )
            ]
            for start in range(0, len(page), CHUNK):
                part = page[start : start + CHUNK]
                for row in tx.query(
                    f"SELECT {ALBUM_COLUMNS} FROM {ALBUMS_WITH_TRACKS} "
                    f"WHERE a.id IN ({', '.join('?' * len(part))}) "
                    "GROUP BY a.id",
                    tuple(part),
                ):
                    found[row[0]] = row
        return [album(found[number]) for number in page if number in found]

    def album(self, sent: str) -> dict[str, Any]:
        found = self.albums("a.id = ?", [ids.album_number(sent)], count=1)
        if not found:
            raise not_found(f"album {sent!r}")
        return found[0]

    def album_artists(self) -> list[tuple[str, int]]:
        """Each album artist and their number of albums, by name (a
        client's sync asks for them with every page)."""

        def read() -> list[tuple[str, int]]:
            rows = self.rows(
                "SELECT albumartist, COUNT(*) FROM albums "
                "GROUP BY albumartist ORDER BY albumartist COLLATE NOCASE"
            )
            return [(str(name or ""), int(albums)) for name, albums in rows]

        artists: list[tuple[str, int]] = self.fresh("album artists", read)
        return artists

    def artist_name(self, sent: str) -> str:
        """The name of the artist (of an album or of a track) an id
        stands for."""

        def read() -> dict[str, str]:
            rows = self.rows(
                "SELECT albumartist FROM albums UNION SELECT artist FROM items"
            )
            return {
                ids.named_id(ids.ARTIST, str(n or "")): str(n or "")
                for (n,) in rows
            }

        names: dict[str, str] = self.fresh("artist names", read)
        name = names.get(sent)
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
