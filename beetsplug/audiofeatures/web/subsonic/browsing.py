"""The system and browsing methods: the server, its one music folder,
artists, albums, songs, genres, album lists, random songs and
``search3`` (whose empty query lists everything, as clients sync)."""

from __future__ import annotations

from typing import Any

from beetsplug.audiofeatures.web.subsonic import ids
from beetsplug.audiofeatures.web.subsonic.calls import (
    MOST_OFFSET,
    Call,
    method,
)
from beetsplug.audiofeatures.web.subsonic.catalogue import (
    artist,
    genre_clause,
)
from beetsplug.audiofeatures.web.subsonic.responses import (
    GENERIC,
    SubsonicError,
)

IGNORED_ARTICLES = ("The", "El", "La", "Los", "Las", "Le", "Les")
MUSIC_FOLDER = {"id": 1, "name": "beets"}
#: The OpenSubsonic extensions served, with their versions; ``clapSearch``
#: is this server's own (search by sentence and by beets query).
EXTENSIONS = {
    "apiKeyAuthentication": [1],
    "formPost": [1],
    "sonicSimilarity": [1],
    "clapSearch": [1],
}


@method("ping")
def ping(call: Call) -> dict[str, Any]:
    return {}


@method("getLicense")
def get_license(call: Call) -> dict[str, Any]:
    return {"license": {"valid": True}}


@method("getOpenSubsonicExtensions")
def get_extensions(call: Call) -> dict[str, Any]:
    return {
        "openSubsonicExtensions": [
            {"name": name, "versions": versions}
            for name, versions in EXTENSIONS.items()
        ]
    }


@method("getUser")
def get_user(call: Call) -> dict[str, Any]:
    name = call.text("username", call.user.name)
    if name != call.user.name:  # nobody is an administrator here
        raise SubsonicError(50, "a user may read only their own account")
    granted = ("stream", "download", "playlist", "coverArt", "scrobbling")
    refused = (
        "admin", "settings", "upload", "comment", "podcast", "jukebox",
        "share", "videoConversion",
    )  # fmt: skip
    return {
        "user": {
            "username": name, "scrobblingEnabled": True,
            **{f"{role}Role": True for role in granted},
            **{f"{role}Role": False for role in refused}, "folder": [1],
        }
    }  # fmt: skip


@method("getMusicFolders")
def get_music_folders(call: Call) -> dict[str, Any]:
    return {"musicFolders": {"musicFolder": [MUSIC_FOLDER]}}


def index_letter(name: str) -> str:
    for article in IGNORED_ARTICLES:
        if name.startswith(article + " "):
            name = name[len(article) + 1 :]
    first = name[:1].upper()
    return first if first.isalpha() else "#"


def artist_index(call: Call) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for name, albums in call.state.catalogue.album_artists():
        groups.setdefault(index_letter(name), []).append(artist(name, albums))
    return [
        {"name": letter, "artist": groups[letter]} for letter in sorted(groups)
    ]


@method("getArtists")
def get_artists(call: Call) -> dict[str, Any]:
    return {
        "artists": {
            "ignoredArticles": " ".join(IGNORED_ARTICLES),
            "index": artist_index(call),
        }
    }


@method("getIndexes")
def get_indexes(call: Call) -> dict[str, Any]:
    return {
        "indexes": {
            "ignoredArticles": " ".join(IGNORED_ARTICLES),
            "lastModified": 0,
            "index": artist_index(call),
        }
    }


@method("getArtist")
def get_artist(call: Call) -> dict[str, Any]:
    name = call.state.catalogue.artist_name(call.required("id"))
    albums = call.state.catalogue.albums(
        "a.albumartist = ?", [name], "a.year, a.album", count=MOST_OFFSET
    )
    return {"artist": {**artist(name, len(albums)), "album": albums}}


@method("getAlbum")
def get_album(call: Call) -> dict[str, Any]:
    catalogue = call.state.catalogue
    album = catalogue.album(call.required("id"))
    numbers = catalogue.song_numbers(
        "album_id = ?", [ids.album_number(album["id"])],
        "disc, track, id", count=MOST_OFFSET,
    )  # fmt: skip
    return {"album": {**album, "song": catalogue.songs(numbers)}}


@method("getMusicDirectory")
def get_music_directory(call: Call) -> dict[str, Any]:
    """The folders of the old browsing: an artist holds its albums, an
    album its songs."""
    sent = call.required("id")
    if sent.startswith(ids.ARTIST + "-"):
        found = get_artist(call)["artist"]
        children = [
            {"id": a["id"], "parent": sent, "isDir": True, "title": a["name"],
             "album": a["name"], "artist": a["artist"], "coverArt": a["coverArt"]}
            for a in found.pop("album")
        ]  # fmt: skip
        return {
            "directory": {"id": sent, "name": found["name"], "child": children}
        }
    found = get_album(call)["album"]
    return {
        "directory": {
            "id": found["id"], "name": found["name"],
            "parent": found["artistId"], "child": found["song"],
        }
    }  # fmt: skip


@method("getSong")
def get_song(call: Call) -> dict[str, Any]:
    item = call.state.catalogue.item(call.required("id"))
    return {"song": call.state.catalogue.songs([int(item.id or 0)])[0]}


@method("getGenres")
def get_genres(call: Call) -> dict[str, Any]:
    return {"genres": {"genre": call.state.catalogue.genres()}}


@method("getSongsByGenre")
def get_songs_by_genre(call: Call) -> dict[str, Any]:
    where, params = genre_clause("genres", call.required("genre"))
    numbers = call.state.catalogue.song_numbers(
        where, params, "artist, album, disc, track, id",
        call.number("count", 10), call.number("offset", 0, most=MOST_OFFSET),
    )  # fmt: skip
    return {"songsByGenre": {"song": call.state.catalogue.songs(numbers)}}


@method("getRandomSongs")
def get_random_songs(call: Call) -> dict[str, Any]:
    clauses: list[str] = ["1"]
    params: list[Any] = []
    if genre := call.text("genre"):
        clause, genre_params = genre_clause("genres", genre)
        clauses.append(clause)
        params += genre_params
    for name, test in (("fromYear", "year >= ?"), ("toYear", "year <= ?")):
        if call.text(name):
            clauses.append(test)
            params.append(call.number(name, 0, most=99_999))
    numbers = call.state.catalogue.song_numbers(
        " AND ".join(clauses), params, "random()", call.number("size", 10)
    )
    return {"randomSongs": {"song": call.state.catalogue.songs(numbers)}}


#: getAlbumList2's types: the SQL that orders (and filters) them.
ALBUM_ORDERS = {
    "random": "random()",
    "newest": "a.added DESC, a.id DESC",
    "alphabeticalByName": "a.album COLLATE NOCASE, a.id",
    "alphabeticalByArtist": "a.albumartist COLLATE NOCASE, a.year, a.id",
    "byYear": "a.year, a.id",
    "byGenre": "a.album COLLATE NOCASE, a.id",
    "frequent": "plays DESC, a.id",
    "recent": "last DESC, a.id",
    "highest": "a.id",
    "starred": "a.id",
}
PLAYS = (
    "(SELECT COALESCE(SUM(CAST(f.value AS INTEGER)), 0) FROM item_attributes f "
    "JOIN items t ON t.id = f.entity_id WHERE t.album_id = a.id "
    "AND f.key = 'play_count')"
)
LAST_PLAYED = (
    "(SELECT MAX(CAST(f.value AS REAL)) FROM item_attributes f "
    "JOIN items t ON t.id = f.entity_id WHERE t.album_id = a.id "
    "AND f.key = 'last_played')"
)


@method("getAlbumList2")
def get_album_list(call: Call) -> dict[str, Any]:
    kind = call.required("type")
    if kind not in ALBUM_ORDERS:
        raise SubsonicError(
            GENERIC,
            f"unknown type {kind[:40]!r}: use one of "
            + ", ".join(ALBUM_ORDERS),
        )
    where, params = album_filter(call, kind)
    order = ALBUM_ORDERS[kind]
    if kind in ("frequent", "recent"):
        where += (
            f" AND {PLAYS if kind == 'frequent' else LAST_PLAYED} IS NOT NULL"
        )
        order = order.replace("plays", PLAYS).replace("last", LAST_PLAYED)
        if kind == "frequent":
            where += f" AND {PLAYS} > 0"
    if kind == "byYear" and call.number(
        "fromYear", 0, most=99_999
    ) > call.number("toYear", 99_999, most=99_999):
        order = "a.year DESC, a.id"
    albums = call.state.catalogue.albums(
        where, params, order, call.number("size", 10),
        call.number("offset", 0, most=MOST_OFFSET),
    )  # fmt: skip
    return {"albumList2": {"album": albums}}


def album_filter(call: Call, kind: str) -> tuple[str, list[Any]]:
    if kind in ("highest", "starred"):  # no ratings, no stars here
        return "0", []
    if kind == "byGenre":
        clause, params = genre_clause("a.genres", call.required("genre"))
        return clause, list(params)
    if kind == "byYear":
        first = (
            call.number("fromYear", 0, most=99_999)
            if call.text("fromYear")
            else None
        )
        last = (
            call.number("toYear", 0, most=99_999)
            if call.text("toYear")
            else None
        )
        if first is None or last is None:
            raise SubsonicError(10, "byYear needs fromYear and toYear")
        low, high = sorted((first, last))
        return "a.year BETWEEN ? AND ?", [low, high]
    return "1", []
