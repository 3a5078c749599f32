"""The API's ids: a kind and a number (``tr-12`` a track, ``al-3`` an
album) or a kind and a digest of a name (``ar-…`` an artist, ``pl-…`` a
playlist). They stay the same across restarts and never hold a path;
an id of the wrong kind, or no id at all, is not found (70)."""

from __future__ import annotations

import hashlib

from beetsplug.audiofeatures.input_limits import MOST_INTEGER
from beetsplug.audiofeatures.web.subsonic.responses import not_found

SONG = "tr"
ALBUM = "al"
ARTIST = "ar"
PLAYLIST = "pl"
KIND_NAMES = {
    SONG: "song",
    ALBUM: "album",
    ARTIST: "artist",
    PLAYLIST: "playlist",
}


def song_id(number: int) -> str:
    return f"{SONG}-{number}"


def album_id(number: int) -> str:
    return f"{ALBUM}-{number}"


def named_id(kind: str, name: str) -> str:
    digest = hashlib.sha1(name.encode("utf-8", "surrogateescape"))
    return f"{kind}-{digest.hexdigest()[:20]}"


def number_of(sent: str, *kinds: str) -> tuple[str, int]:
    """The kind and the number of an id of one of ``kinds``."""
    kind, _, number = sent.partition("-")
    digits = number.isascii() and number.isdigit() and len(number) <= 19
    if kind in kinds and digits and 1 <= int(number) <= MOST_INTEGER:
        return kind, int(number)
    raise not_found(
        f"{' or '.join(KIND_NAMES[k] for k in kinds)} {sent[:60]!r}"
    )


def song_number(sent: str) -> int:
    return number_of(sent, SONG)[1]


def album_number(sent: str) -> int:
    return number_of(sent, ALBUM)[1]
