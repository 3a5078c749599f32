"""The methods that search, play and keep count: ``search3`` and this
server's ``clapSearch``, ``stream``, ``download``, ``getCoverArt``,
``scrobble``, the playlists, and the similar songs of the CLAP
vectors."""

from __future__ import annotations

import time
from typing import Any

from flask import Response

from beets_audiofeatures.errors import RequestError
from beetsplug.audiofeatures.search.radio import RadioLibrary, choose_radio
from beetsplug.audiofeatures.search.saved_playlists import (
    radio_request,
    saved_playlists,
)
from beetsplug.audiofeatures.web.subsonic import ids, media, similarity
from beetsplug.audiofeatures.web.subsonic.calls import (
    MOST_OFFSET,
    Call,
    method,
)
from beetsplug.audiofeatures.web.subsonic.catalogue import (
    artist,
    iso_time,
    song,
)
from beetsplug.audiofeatures.web.subsonic.folder_playlists import (
    FolderPlaylist,
    folder_playlists,
    track_numbers,
)
from beetsplug.audiofeatures.web.subsonic.responses import missing, not_found

#: ``search3``'s query as clients send "everything".
EVERYTHING = ("", '""', "''", "*")


def like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its wildcards escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@method("search3")
def search3(call: Call) -> dict[str, Any]:
    text = call.text("query").strip()
    catalogue = call.state.catalogue
    pattern = like("" if text in EVERYTHING else text)

    def page(name: str) -> tuple[int, int]:
        return (
            call.number(f"{name}Count", 20),
            call.number(f"{name}Offset", 0, most=MOST_OFFSET),
        )

    count, offset = page("artist")
    needle = ("" if text in EVERYTHING else text).casefold()
    matching = [
        (name, albums)
        for name, albums in catalogue.album_artists()
        if needle in name.casefold()
    ]  # each entry (an id's digest) made for the page only
    artists = [
        artist(name, albums)
        for name, albums in matching[offset : offset + count]
    ]
    count, offset = page("album")
    albums = catalogue.albums(
        "a.album LIKE ? ESCAPE '\\' OR a.albumartist LIKE ? ESCAPE '\\'",
        [pattern, pattern], "a.albumartist COLLATE NOCASE, a.album, a.id",
        count, offset,
    )  # fmt: skip
    count, offset = page("song")
    numbers = catalogue.song_numbers(
        " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in ("title", "artist", "album")),
        [pattern] * 3, "id", count, offset,
    )  # fmt: skip
    return {
        "searchResult3": {
            "artist": artists, "album": albums, "song": catalogue.songs(numbers),
        }
    }  # fmt: skip


@method("clapSearch")
def clap_search(call: Call) -> dict[str, Any]:
    """This server's extension: the best songs for a sentence
    (``prompt``), among those a beets ``query`` matches (``beet
    clapquery``); a query alone lists its songs."""
    prompt, query = call.text("prompt"), call.text("query")
    if not prompt.strip() and not query.strip():  # spaces say nothing
        raise missing("prompt")
    tracks = call.state.search.search(
        prompt, query, None, call.number("count", 20, least=1)
    )
    return {
        "clapSearch": {
            "song": call.state.catalogue.songs([t.id for t in tracks])
        }
    }


@method("stream")
def stream(call: Call) -> Response:
    item = call.state.catalogue.item(call.required("id"))
    form = call.text("format").lower()
    bit_rate = call.number("maxBitRate", 0, most=media.MOST_BIT_RATE * 10)
    if media.needs_transcoding(item, form, bit_rate):
        return media.transcoded(item, form, bit_rate)
    return media.original(item)


@method("download")
def download(call: Call) -> Response:
    return media.original(call.state.catalogue.item(call.required("id")), True)


@method("getCoverArt")
def get_cover_art(call: Call) -> Response:
    sent = call.required("id")
    lib = call.state.search.lib
    kind, number = ids.number_of(sent, ids.ALBUM, ids.SONG)
    if kind == ids.SONG:
        item = call.state.catalogue.item(sent)
        album = item.get_album()
        items = [item, *(album.items() if album else [])]
    else:
        album = lib.get_album(number)
        if album is None:
            raise not_found(f"album {sent!r}")
        items = list(album.items())
    image = media.cover_bytes(album.artpath if album else None, items)
    if size := call.number("size", 0, most=media.MOST_COVER_SIZE):
        image = media.scaled(image, size)
    return Response(
        image,
        mimetype=media.image_type(image),
        headers={"Cache-Control": "max-age=86400"},
    )


@method("scrobble")
def scrobble(call: Call) -> dict[str, Any]:
    """A play (``submission``, the default) adds one to the track's
    ``play_count`` and sets ``last_played``, as beets' mpdstats does; a
    "now playing" note changes nothing."""
    sent = call.every("id") or [call.required("id")]
    items = [call.state.catalogue.item(s) for s in sent]
    times = call.every("time")
    if not call.flag("submission", True):
        return {}
    for n, item in enumerate(items):
        played = time.time()
        if n < len(times) and times[n].isdigit():
            played = min(int(times[n][:16]) / 1000, played)
        item["play_count"] = (
            int(item.get("play_count", 0, with_album=False) or 0) + 1
        )
        item["last_played"] = played
        item.store()
    return {}


def playlist_entry(
    name: str, songs: int | None, duration: int | None
) -> dict[str, Any]:
    # A saved playlist is a radio made when asked for: made (and so
    # changed) now, and read-only.
    now = iso_time(time.time())
    return {
        "id": ids.named_id(ids.PLAYLIST, name), "name": name,
        "owner": "beets", "public": True, "readonly": True,
        "songCount": songs or 0, "duration": duration or 0,
        "created": now, "changed": now,
        "comment": "audiofeatures.clap.playlists",
    }  # fmt: skip


def file_entry(
    playlist: FolderPlaylist, songs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A playlist file's entry (with ``songs``: its count and length;
    the list counts none, not to read every file)."""
    changed = iso_time(playlist.changed)
    listed = songs or []
    return {
        "id": playlist.id, "name": playlist.name, "owner": "beets",
        "public": True, "readonly": True, "songCount": len(listed),
        "duration": sum(s["duration"] for s in listed),
        "created": changed, "changed": changed,
        "comment": "audiofeatures.web.playlist_dir",
    }  # fmt: skip


def playlist_files(call: Call) -> list[FolderPlaylist]:
    return folder_playlists(call.state.web.playlist_dir, set(configured(call)))


def configured(call: Call) -> dict[str, dict[str, Any]]:
    try:
        return saved_playlists(call.state.search.settings.view)
    except RequestError:  # none configured
        return {}


@method("getPlaylists")
def get_playlists(call: Call) -> dict[str, Any]:
    length = call.state.search.settings.radio_length
    entries = [
        playlist_entry(name, entry.get("limit") or length, None)
        for name, entry in configured(call).items()
    ]
    entries += [file_entry(playlist) for playlist in playlist_files(call)]
    return {"playlists": {"playlist": entries}}


@method("getPlaylist")
def get_playlist(call: Call) -> dict[str, Any]:
    """A saved playlist, made now (a radio follows the library)."""
    sent = call.required("id")
    for name, entry in configured(call).items():
        if ids.named_id(ids.PLAYLIST, name) == sent:
            search = call.state.search
            radio = RadioLibrary(
                search.settings.view,
                search.log,
                search.lib,
                radio_request(entry),
            )
            songs = [song(item) for item, _, _ in choose_radio(radio)]
            length = sum(s["duration"] for s in songs)
            return {
                "playlist": {
                    **playlist_entry(name, len(songs), length),
                    "entry": songs,
                }
            }
    for playlist in playlist_files(call):
        if playlist.id == sent:
            try:
                paths = list(playlist.paths())
            except OSError:  # removed since it was listed
                break
            catalogue = call.state.catalogue
            songs = catalogue.songs(track_numbers(catalogue.lib, paths))
            return {"playlist": {**file_entry(playlist, songs), "entry": songs}}
    raise not_found(f"playlist {sent!r}")


def similar_seeds(call: Call) -> tuple[str, ...]:
    """The beets query of the songs an id stands for: a song, an
    album's songs or an artist's."""
    sent = call.required("id")
    if sent.startswith(ids.ARTIST + "-"):
        return (f"artist:={call.state.catalogue.artist_name(sent)}",)
    kind, number = ids.number_of(sent, ids.SONG, ids.ALBUM)
    if kind == ids.SONG:
        call.state.catalogue.item(sent)
        return (f"id:{number}",)
    call.state.catalogue.album(sent)
    return (f"album_id:{number}",)


@method("getSimilarSongs", "getSimilarSongs2")
def get_similar_songs(call: Call) -> dict[str, Any]:
    items = similarity.radio_items(
        call.state.search,
        similar_seeds(call),
        call.number("count", 50, least=1),
        False,
    )
    key = "similarSongs2" if call.name == "getSimilarSongs2" else "similarSongs"
    return {key: {"song": [song(item) for item in items]}}


@method("getSonicSimilarTracks")
def get_sonic_similar_tracks(call: Call) -> dict[str, Any]:
    item = call.state.catalogue.item(call.required("id"))
    count = call.number("count", 10, least=1)
    return {
        "sonicMatch": similarity.sonic_similar(call.state.search, item, count)
    }


@method("findSonicPath")
def find_sonic_path(call: Call) -> dict[str, Any]:
    catalogue = call.state.catalogue
    start = catalogue.item(call.required("startSongId"))
    end = catalogue.item(call.required("endSongId"))
    count = max(2, call.number("count", 25, least=1))
    return {
        "sonicMatch": similarity.sonic_path(
            call.state.search, start, end, count
        )
    }
