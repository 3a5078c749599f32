"""What both commands check about an audio file before and after decoding
it, worded once: whether the path is a file worth giving a decoder, how
long a decode may take, and when decoded audio is too short.

A FIFO or a device (``/dev/zero`` behind a symlink) never ends: a
decoder reads it until it is killed. Such paths are refused before any
decoder starts, and every decode gets a time limit from the length of
audio it should produce, so nothing can stall a batch for long.

Nothing here imports beets.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass

from .errors import SetupError, TrackError

#: A decode shorter than expected by more than this share of the expected
#: length (and at least ``TRUNCATION_SLACK`` seconds) is a truncated file.
TRUNCATION_TOLERANCE = 0.1
TRUNCATION_SLACK = 1.0

#: Where an expected length comes from, for the truncation message.
LIBRARY_EXPECTS = "the library expects"
HEADER_PROMISES = "the file header promises"

#: A decode may take this long whatever the length (process start, seek,
#: a loaded machine) ...
DECODE_TIMEOUT_BASE = 30.0
#: ... plus this many seconds per second of audio it produces (ffmpeg
#: decodes at hundreds of times real time; this allows for a slow disk).
DECODE_TIMEOUT_PER_SECOND = 0.2

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class AudioFileError(TrackError):
    """The path cannot hold audio; the message says why, in a few words."""


class MissingToolError(SetupError):
    """ffmpeg is not installed; the message says what needs it and how
    to install it."""


def require_ffmpeg(needed_for: str) -> str:
    """The ffmpeg executable, looked up once here for every decode."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise MissingToolError(
            f"ffmpeg is not installed; {needed_for} (apt install ffmpeg, "
            "brew install ffmpeg, ...)"
        )
    return ffmpeg


def check_audio_file(path: str | bytes | os.PathLike[str]) -> None:
    """Refuse a path no decoder should be given: missing, not a regular
    file (a directory, FIFO, device or socket, also behind a symlink) or
    empty. Raises ``AudioFileError``; costs one ``stat``."""
    try:
        info = os.stat(path)  # follows symlinks: /dev/zero behind a link
    except FileNotFoundError:
        raise AudioFileError(
            "file not found (a broken symlink)"
            if os.path.islink(path)
            else "file not found"
        ) from None
    except OSError as exc:
        raise AudioFileError(f"cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = next(
            (name for test, name in _KINDS if test(info.st_mode)),
            "not a file",
        )
        if os.path.islink(path):
            kind += f" (a link to {os.fsdecode(os.path.realpath(path))})"
        raise AudioFileError(f"not a regular file: {kind}")
    if info.st_size == 0:
        raise AudioFileError("file is empty")


def decode_timeout(audio_seconds: float) -> float:
    """Seconds a decode that produces ``audio_seconds`` of audio (or
    seeks that far into a file) may take before it is given up."""
    return DECODE_TIMEOUT_BASE + DECODE_TIMEOUT_PER_SECOND * max(
        0.0, audio_seconds
    )


def truncation_reason(
    decoded_seconds: float,
    expected_seconds: float,
    expected_by: str = LIBRARY_EXPECTS,
) -> str | None:
    """Why audio that ends at ``decoded_seconds`` is a truncated file,
    or None when it ends close enough to ``expected_seconds``.

    ``expected_by`` says where the expected length came from (beets'
    database by default; ``HEADER_PROMISES`` when it was read from the
    file itself)."""
    if expected_seconds <= 0:
        return None
    slack = max(TRUNCATION_SLACK, TRUNCATION_TOLERANCE * expected_seconds)
    if expected_seconds - decoded_seconds <= slack:
        return None
    return (
        f"truncated: the audio stops at {max(0.0, decoded_seconds):.1f} s "
        f"of the {expected_seconds:.1f} s {expected_by}"
    )


#: How much of each end of a file :func:`file_identity` reads.
IDENTITY_SPAN = 1 << 20


@dataclass(frozen=True)
class FileIdentity:
    """What tells two copies of a file apart cheaply: the size, and a
    SHA-256 of the first and last MB (a tag edit, a re-encode and another
    recording of the same length all change it)."""

    size: int
    ends_sha256: str

    def difference(self, copy: FileIdentity) -> str | None:
        """How ``copy`` differs from this file, in a few words, or None."""
        if copy.size != self.size:
            return f"{copy.size:,} bytes there, {self.size:,} here"
        if copy.ends_sha256 != self.ends_sha256:
            return "the same size, but other bytes in its first or last MB"
        return None


def file_identity(path: str | bytes | os.PathLike[str]) -> FileIdentity:
    """The size and ends digest of the file at ``path`` (reads 2 MB at
    most; ``OSError`` if it cannot be read)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        digest.update(handle.read(IDENTITY_SPAN))
        if size > IDENTITY_SPAN:
            handle.seek(max(IDENTITY_SPAN, size - IDENTITY_SPAN))
            digest.update(handle.read(IDENTITY_SPAN))
    return FileIdentity(size, digest.hexdigest())
