"""A library track's audio for the page's ``<audio>`` element, found by
item id only: the file itself when browsers play its format, else a
FLAC or MP3 copy made once by ffmpeg and kept for the server's life.
Either is a plain file, so HTTP Range requests (seeking) work."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from beets_audiofeatures.errors import RequestError
from beets_audiofeatures.scratch import remove_scratch, scratch_folder
from beets_audiofeatures.transcode import TranscodeError, transcode_for_browser
from beetsplug.audiofeatures.library_query import source_key

if TYPE_CHECKING:
    from beets.library import Item

#: beets' format names of what every current browser plays as it is.
PLAYABLE = frozenset({"MP3", "AAC", "OGG", "Opus", "FLAC", "WAVE", "WAV"})
#: Lossless formats browsers do not play: copied to FLAC, losing nothing.
LOSSLESS = frozenset(
    {"ALAC", "APE", "WavPack", "AIFF", "DSD Stream File", "TTA"}
)
#: By extension, for the files served as they are.
MIME_TYPES = {
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".mp4": "audio/mp4",
    ".aac": "audio/aac",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
}


class BrowserAudio:
    """The files to serve; the transcoded copies live in a folder of
    their own, removed by :meth:`close` (or, when the server was killed,
    by the next program of this plugin to make a scratch folder)."""

    def __init__(self) -> None:
        self.folder = scratch_folder("clapweb")
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()

    def close(self) -> None:
        remove_scratch(self.folder)

    def file_of(self, item: Item) -> tuple[Path, str]:
        """The file to send for a track and its MIME type."""
        source = Path(os.fsdecode(item.path))
        if not source.is_file():
            raise RequestError(f"the file of track {item.id} is missing", 404)
        mime = MIME_TYPES.get(source.suffix.lower())
        if str(item.format) in PLAYABLE and mime:
            return source, mime
        return self._transcoded(item, source)

    def _transcoded(self, item: Item, source: Path) -> tuple[Path, str]:
        lossless = str(item.format) in LOSSLESS
        suffix, mime = (
            (".flac", "audio/flac") if lossless else (".mp3", "audio/mpeg")
        )
        # New audio at the same path (a re-rip) is a new copy.
        stamp = source_key(item) or f"{source.stat().st_mtime_ns}"
        target = self.folder / f"{item.id}-{stamp}{suffix}"
        with self._guard:
            lock = self._locks.setdefault(int(item.id or 0), threading.Lock())
        with lock:  # two requests for one track transcode it once
            if not target.exists():
                try:
                    transcode_for_browser(
                        item.path, target, lossless, float(item.length or 0)
                    )
                except TranscodeError as exc:
                    raise RequestError(
                        f"cannot transcode track {item.id}: {exc}", 502
                    ) from None
        return target, mime
