"""The page's playlists: the list as an M3U download, and a playlist
saved into ``playlist_dir`` (a POST carrying the page's CSRF token;
nothing is written anywhere else)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from beets_audiofeatures.atomic_files import atomic_write
from beets_audiofeatures.errors import RequestError
from beetsplug.audiofeatures import input_limits
from beetsplug.audiofeatures.library_query import items_by_id
from beetsplug.audiofeatures.output import m3u_text, relative_base

if TYPE_CHECKING:
    from beets.library import Item, Library

MOST_PLAYLIST_TRACKS = 10_000


def id_list(sent: Any, most: int = MOST_PLAYLIST_TRACKS) -> list[int]:
    """``1,2,3`` (or a JSON list of numbers) as item ids."""
    if isinstance(sent, list):
        parts = sent
    elif isinstance(sent, str):
        parts = [p for p in sent.replace(" ", "").split(",") if p]
    else:
        parts = [sent]
    if not all(
        isinstance(p, int)
        or (isinstance(p, str) and p.isascii() and p.isdigit())
        for p in parts
    ):
        raise RequestError("ids must be whole numbers separated by commas")
    return input_limits.item_ids(parts, "ids", most)


def playlist_items(lib: Library, ids: list[int]) -> list[Item]:
    """The items of a playlist, in its order; a 404 for one not there."""
    found = items_by_id(lib, ids)
    if missing := [n for n in ids if n not in found]:
        raise RequestError(f"no track {missing[0]} in the library", 404)
    return [found[n] for n in ids]


def m3u_bytes(items: list[Item], base: str | None = None) -> bytes:
    """The playlist's file (paths that are not UTF-8 too)."""
    return m3u_text(items, base).encode("utf-8", "surrogateescape")


def playlist_target(folder: Path | None, name: Any) -> Path:
    """Where a playlist named ``name`` is saved: ``<folder>/<name>.m3u8``,
    checked to stay in the folder."""
    if folder is None:
        raise RequestError(
            "no playlist folder: set audiofeatures.web.playlist_dir", 409
        )
    if not folder.is_dir():
        raise RequestError(f"the playlist folder {folder} does not exist", 409)
    if not isinstance(name, str):
        raise RequestError("a playlist's name is text")
    name = re.sub(r"\.m3u8?$", "", name.strip(), flags=re.IGNORECASE)
    input_limits.playlist_name(name, "the name")
    try:
        target = (folder / f"{name}.m3u8").resolve()
        inside = target.parent == folder.resolve()
    except (OSError, RuntimeError) as exc:  # a symbolic link loop
        raise RequestError(
            f"the playlist folder {folder} cannot be used: {exc}", 409
        ) from None
    if not inside:
        raise RequestError("a playlist is saved in the playlist folder only")
    return target


def save_playlist(
    lib: Library, folder: Path | None, form: dict[str, Any]
) -> tuple[Path, int]:
    """Write the playlist the form describes (``name``, ``ids``,
    ``replace``); where it went and how many tracks it holds."""
    target = playlist_target(folder, form.get("name", ""))
    ids = id_list(form.get("ids", ""))
    if not ids:
        raise RequestError("the playlist has no tracks")
    replace = str(form.get("replace", "")).lower() in ("1", "true", "yes", "on")
    if target.exists() and not replace:
        raise RequestError(f"a playlist {target.name} exists already", 409)
    body = m3u_bytes(playlist_items(lib, ids), relative_base(target))
    with atomic_write(target) as handle:
        handle.write(body)
    return target, len(ids)
