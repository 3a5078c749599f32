"""What ``beet clapquery`` prints (lines, ``-f`` formats, ``--json``)
and writes (``--m3u``)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import confuse
from beets import config as beets_config
from beets import ui
from beets.util import displayable_path

from beets_audiofeatures.atomic_files import temporary_beside
from beets_audiofeatures.errors import RequestError

if TYPE_CHECKING:
    from beets.library import Album, Item


class ShowOptions(Protocol):
    """The output options of the commands that list tracks."""

    json: bool
    format: str | None


def score_detail(labels: Sequence[str], scores: Sequence[float]) -> str:
    """Each prompt's own score, when there are several:
    ``(piano 0.410 · strings 0.120)``."""
    if len(scores) < 2:
        return ""
    parts = (
        f"{label} {score:.3f}"
        for label, score in zip(labels, scores, strict=False)
    )
    return f"  ({' · '.join(parts)})"


def show_items(
    found: list[tuple[Item, float, list[float]]],
    labels: list[str],
    opts: ShowOptions,
) -> None:
    if opts.json:
        ui.print_(json.dumps([
            {
                "id": item.id,
                "path": displayable_path(item.path),
                "artist": item.artist,
                "album": item.album,
                "title": item.title,
                "score": round(score, 4),
                "scores": dict(zip(labels, (round(s, 4) for s in scores), strict=False)),
            }
            for item, score, scores in found
        ], indent=2, ensure_ascii=False))  # fmt: skip
        return
    for item, score, scores in found:
        item["clap_score"] = score
        if opts.format:
            ui.print_(format(item, opts.format))
        else:
            ui.print_(f"{score:.3f}  {item}{score_detail(labels, scores)}")


def show_albums(
    albums: list[tuple[Album, float, int]], opts: ShowOptions
) -> None:
    if opts.json:
        ui.print_(json.dumps([
            {"id": album.id, "albumartist": album.albumartist,
             "album": album.album, "score": round(score, 4),
             "tracks": tracks}
            for album, score, tracks in albums
        ], indent=2, ensure_ascii=False))  # fmt: skip
        return
    for album, score, _ in albums:
        album["clap_score"] = score
        ui.print_(
            format(album, opts.format)
            if opts.format
            else f"{score:.3f}  {album}"
        )


def m3u_text(items: Iterable[Item], base: str | None = None) -> str:
    """An extended M3U playlist of the items' paths, absolute or relative
    to ``base`` (write it as UTF-8, with ``surrogateescape`` for paths
    that are not)."""
    lines = ["#EXTM3U"]
    for item in items:
        # A tag's line break would start a line of its own.
        artist, title = (
            " ".join(str(v).split()) for v in (item.artist, item.title)
        )
        lines.append(f"#EXTINF:{round(item.length or 0)},{artist} - {title}")
        path = os.fsdecode(os.path.abspath(item.path))
        lines.append(path if base is None else os.path.relpath(path, base))
    return "\n".join(lines) + "\n"


def relative_base(playlist: Path) -> str | None:
    """The folder a playlist's paths are written relative to, as beets'
    smartplaylist ``relative_to`` says (``playlist``: the playlist's own
    folder); None for absolute paths."""
    try:
        value = beets_config["smartplaylist"]["relative_to"].get()
    except confuse.NotFoundError:
        return None
    if not value or not isinstance(value, str):
        return None
    if value == "playlist":
        return os.path.abspath(playlist.parent)
    return os.path.abspath(os.path.expanduser(value))


class Playlist:
    """The ``--m3u`` file. Checked before anything is printed, by creating
    its temporary file beside it: a folder, a missing folder or a place
    that cannot be written costs one line, and no folder is created."""

    def __init__(self, value: str, label: str = "--m3u") -> None:
        # ``label`` names where the file name came from in the lines
        # below: the option as typed, or a saved playlist's setting.
        if "\x00" in value:  # no file name holds one
            raise RequestError(f"{label} {value!r}: a file name has no NUL")
        path = Path(value).expanduser()
        if path.is_dir():
            raise RequestError(
                f"{label} {value} is a folder: give the playlist's file "
                f"name, such as {path / 'clap.m3u'}"
                if label == "--m3u"
                else f"{label} {value} is a folder: move it out of the way"
            )
        if not path.parent.is_dir():
            raise RequestError(
                f"{label} {value}: the folder {path.parent} does not exist"
            )
        try:
            # 0666 less the umask, or the existing playlist's mode: a
            # media server running as another user reads it.
            handle, tmp = temporary_beside(path)
        except OSError as exc:
            raise RequestError(
                f"{label} {value}: cannot write in {path.parent} "
                f"({exc.strerror or exc})"
            ) from exc
        os.close(handle)
        self.path = path
        self.tmp = Path(tmp)

    def write(self, items: Iterable[Item]) -> None:
        try:
            self.tmp.write_text(
                m3u_text(items, relative_base(self.path)),
                encoding="utf-8",
                errors="surrogateescape",
            )
            os.replace(self.tmp, self.path)
        except OSError as exc:
            raise RequestError(
                f"cannot write the playlist {self.path}: {exc.strerror or exc}"
            ) from exc

    def discard(self) -> None:
        """Remove the temporary file (once written, there is none)."""
        with contextlib.suppress(OSError):
            self.tmp.unlink()


def show_and_write(
    m3u: str | None, find_and_show: Callable[[], list[Item]]
) -> None:
    """Run ``find_and_show`` (which prints the results and returns the
    tracks shown) and write them to the ``--m3u`` playlist, whose place
    is checked before anything is printed."""
    playlist = Playlist(m3u) if m3u else None
    try:
        shown = find_and_show()
        if playlist is not None:
            playlist.write(shown)
    finally:
        if playlist is not None:
            playlist.discard()
