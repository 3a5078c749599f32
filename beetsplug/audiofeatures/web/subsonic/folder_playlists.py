"""The playlist folder's files as the API's playlists: every ``.m3u``
and ``.m3u8`` file in ``audiofeatures.web.playlist_dir`` (the page saves
there; by default where ``beet clap --playlists`` writes), read-only.
An ``.m3u8`` is UTF-8; an ``.m3u`` is UTF-8 when it reads as such, else
Latin-1 (the old M3U's). Its entries are the library's tracks at the
paths it lists (relative ones from the file's folder); a path that is no
track of the library is left out, so nothing outside the library is ever
served. A file named for a configured playlist is the radio it was
written from, which the API lists instead."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from beets.dbcore.query import OrQuery, PathQuery
from beets.util import normpath

from beetsplug.audiofeatures.library_query import CHUNK, item_id
from beetsplug.audiofeatures.web.subsonic import ids

if TYPE_CHECKING:
    from beets.library import Library

#: The files listed, by their suffix (any case).
SUFFIXES = (".m3u", ".m3u8")
#: The most playlist files listed, and entries read from one.
MOST_FILES = 1_000
MOST_ENTRIES = 10_000
#: The most of a file read (10,000 long paths fit many times over).
MOST_BYTES = 16 * 2**20


@dataclass(frozen=True)
class FolderPlaylist:
    """One file of the playlist folder."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def id(self) -> str:
        # The file's name, suffix included (a.m3u and a.m3u8 are two),
        # marked apart from the configured playlists' names.
        return ids.named_id(ids.PLAYLIST, f"file:{self.path.name}")

    @property
    def changed(self) -> float | None:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return None

    def text(self) -> str:
        with open(self.path, "rb") as playlist:
            data = playlist.read(MOST_BYTES)
        if self.path.suffix.lower() == ".m3u8":
            return data.decode("utf-8", "surrogateescape")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("latin-1")

    def paths(self) -> Iterator[bytes]:
        """The paths the file lists, absolute, in its order."""
        folder = os.fsencode(self.path.parent)
        lines = self.text().removeprefix("\ufeff").splitlines()
        listed = (line.strip() for line in lines)
        for n, line in enumerate(x for x in listed if x and x[0] != "#"):
            if n == MOST_ENTRIES:
                return
            path = os.fsencode(line)
            if b"\x00" not in path:
                yield normpath(os.path.join(folder, path))


def folder_playlists(
    folder: Path | None, configured: set[str]
) -> list[FolderPlaylist]:
    """The folder's playlist files, by name, but those named for a
    configured playlist."""
    if folder is None:
        return []
    try:
        files = sorted(
            path
            for path in folder.iterdir()
            if path.suffix.lower() in SUFFIXES and path.is_file()
        )
    except OSError:  # no folder (yet), or one that cannot be read
        return []
    return [
        FolderPlaylist(path)
        for path in files[:MOST_FILES]
        if path.stem not in configured
    ]


def track_numbers(lib: Library, paths: list[bytes]) -> list[int]:
    """The ids of the library's tracks at these paths, in their order
    (paths that are no track's left out)."""
    found: dict[bytes, int] = {}
    for start in range(0, len(paths), CHUNK):
        part = paths[start : start + CHUNK]
        query = OrQuery([PathQuery("path", path) for path in part])
        for item in lib.items(query):
            found[normpath(item.path)] = item_id(item)
    return [found[path] for path in paths if path in found]
