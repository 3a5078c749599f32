"""What the media methods send: a track's file (HTTP Range through
Werkzeug), the same transcoded on the fly by ffmpeg for ``format`` and
``maxBitRate``, and an album's cover (its art file or the art embedded
in a track), scaled by ffmpeg for ``size``. Only the library's own files
and art files are ever opened: no parameter is a path."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Response, send_file

from beets_audiofeatures.audio_files import require_ffmpeg
from beetsplug.audiofeatures.web.browser_audio import MIME_TYPES
from beetsplug.audiofeatures.web.subsonic.responses import not_found

if TYPE_CHECKING:
    from beets.library import Item

#: The formats ``stream`` transcodes to: ffmpeg's codec and container,
#: and the MIME type.
FORMATS = {
    "mp3": (["-c:a", "libmp3lame", "-f", "mp3"], "audio/mpeg"),
    "opus": (["-c:a", "libopus", "-f", "ogg"], "audio/ogg"),
    "ogg": (["-c:a", "libvorbis", "-f", "ogg"], "audio/ogg"),
    "aac": (["-c:a", "aac", "-f", "adts"], "audio/aac"),
}
DEFAULT_BIT_RATE = 192
LEAST_BIT_RATE, MOST_BIT_RATE = 32, 320
MOST_COVER_SIZE = 3000
CHUNK = 64 * 1024


def track_file(item: Item) -> Path:
    path = Path(os.fsdecode(item.path))
    if not path.is_file():
        raise not_found(f"the file of song tr-{item.id}")
    return path


def original(item: Item, attachment: bool = False) -> Response:
    """The file as it is; a Range request gets its part (206), a range
    past the end 416."""
    path = track_file(item)
    name = f"{item.artist or 'unknown'} - {item.title or item.id}{path.suffix}"
    response = send_file(
        path, mimetype=MIME_TYPES.get(path.suffix.lower(), "application/octet-stream"),
        conditional=True, max_age=0, as_attachment=attachment,
        download_name=name.replace("/", "_"),
    )  # fmt: skip
    response.headers["Accept-Ranges"] = "bytes"
    return response


def needs_transcoding(item: Item, form: str, bit_rate: int) -> bool:
    """Whether ``stream`` sends a transcoded copy: a format other than
    the file's, or a bit rate below its own (``raw``: never)."""
    suffix = Path(os.fsdecode(item.path)).suffix.lower().lstrip(".")
    if form == "raw":
        return False
    if form and form != suffix:
        return True
    own = int(item.bitrate or 0) // 1000
    return bool(bit_rate) and (not own or bit_rate < own)


def transcoded(item: Item, form: str, bit_rate: int) -> Response:
    """The track re-encoded by ffmpeg as it plays: sent while it is
    made, ffmpeg stopped when the client goes."""
    codec, mime = FORMATS.get(form, FORMATS["mp3"])
    rate = min(max(bit_rate or DEFAULT_BIT_RATE, LEAST_BIT_RATE), MOST_BIT_RATE)
    path = track_file(item)
    command = [
        require_ffmpeg("it transcodes what a Subsonic client streams"),
        "-nostdin", "-hide_banner", "-loglevel", "error",
        "-i", "file:" + str(path), "-map", "0:a:0", "-vn",
        *codec, "-b:a", f"{rate}k", "pipe:1",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def body() -> Iterator[bytes]:
        assert process.stdout is not None
        try:
            while chunk := process.stdout.read(CHUNK):
                yield chunk
        finally:  # the client went, or the track ended
            process.kill()
            process.wait()
            process.stdout.close()

    response = Response(body(), mimetype=mime, direct_passthrough=True)
    response.headers["Accept-Ranges"] = "none"
    return response


def cover_bytes(art_path: bytes | None, items: list[Item]) -> bytes:
    """The album's art file, else the first art embedded in its tracks."""
    if art_path and os.path.isfile(art_path):
        return Path(os.fsdecode(art_path)).read_bytes()
    from mediafile import MediaFile, UnreadableFileError

    for item in items:
        try:
            art = MediaFile(item.path).art
        except (OSError, UnreadableFileError):
            continue
        if art:
            return bytes(art)
    raise not_found("cover art")


def scaled(image: bytes, size: int) -> bytes:
    """The image fitted in ``size`` x ``size`` pixels, as JPEG (never
    larger than it is)."""
    fit = (
        f"scale='min({size},iw)':'min({size},ih)'"
        ":force_original_aspect_ratio=decrease"
    )
    done = subprocess.run(
        [
            require_ffmpeg("it scales cover art"), "-nostdin",
            "-loglevel", "error", "-i", "pipe:0", "-frames:v", "1",
            "-vf", fit, "-f", "image2pipe", "-c:v", "mjpeg", "pipe:1",
        ],
        input=image, capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    if done.returncode or not done.stdout:
        raise not_found("a readable cover image")
    return done.stdout


def image_type(image: bytes) -> str:
    if image.startswith(b"\x89PNG"):
        return "image/png"
    if image[:4] == b"RIFF" and image[8:12] == b"WEBP":
        return "image/webp"
    if image.startswith(b"GIF8"):
        return "image/gif"
    return "image/jpeg"
