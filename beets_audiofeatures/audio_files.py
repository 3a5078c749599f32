"""What both commands check about an audio file before and after decoding
it, worded once: whether the path is a file worth giving a decoder, how
long a decode may take, and when decoded audio is too short.

A FIFO or a device (``/dev/zero`` behind a symlink) never ends: a
decoder reads it until it is killed. Such paths are refused before any
decoder starts, and every decode gets a time limit from the length of
audio it should produce, so nothing can stall a batch for long.

It also tells whether a file still holds the audio a stored value was
computed from (:class:`FileIdentity`).

Nothing here imports beets.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import struct
from dataclasses import dataclass
from enum import Enum
from typing import BinaryIO

from .errors import SetupError, TrackError
from .sampled_digest import sampled_digest

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


# -- the audio a file holds ----------------------------------------------
#
# beets' audio columns (format, rate, channels, depth, bitrate, length) are
# the same for any two WAV, AIFF or constant-bitrate MP3 files of one
# length, so they cannot tell a re-rip from the file it replaced. A
# ``FileIdentity`` is recorded when a value is stored: while the file's
# size and modification time are unchanged it is the same file (one
# ``stat``); when they changed, a digest of the audio payload (never the
# tags: ``beet write`` must not make values stale) decides.

#: Bytes read from each of ``DIGEST_SLICES`` places of the payload (0.2 s
#: of CD audio each: two recordings never share all five).
DIGEST_SLICE = 32 * 1024
DIGEST_SLICES = 5
_NO_DIGEST = "-"


@dataclass(frozen=True)
class FileIdentity:
    """A file as it was when a value was computed from it: its size,
    modification time and audio digest (empty when the format's payload
    could not be located, see :func:`audio_digest`)."""

    size: int
    mtime_ns: int
    digest: str = ""

    def __str__(self) -> str:
        return f"{self.size} {self.mtime_ns} {self.digest or _NO_DIGEST}"

    @classmethod
    def parse(cls, text: object) -> FileIdentity | None:
        """The identity ``str()`` wrote, or None for anything else."""
        if not isinstance(text, str):
            return None
        parts = text.split()
        if len(parts) != 3 or not (parts[0] + parts[1]).isdigit():
            return None
        digest = "" if parts[2] == _NO_DIGEST else parts[2]
        return cls(int(parts[0]), int(parts[1]), digest)

    def same_file(self, info: os.stat_result) -> bool:
        return self.size == info.st_size and self.mtime_ns == info.st_mtime_ns


class AudioCheck(Enum):
    """What a recorded identity says about the file at its path now."""

    SAME_FILE = "same file"  # size and time unchanged
    SAME_AUDIO = "same audio"  # rewritten, the payload unchanged (tags)
    NEW_AUDIO = "new audio"
    UNKNOWN = "unknown"  # unreadable, or no payload digest to compare


def file_identity(
    path: str | bytes | os.PathLike[str], info: os.stat_result | None = None
) -> FileIdentity:
    """The file's identity now; raises ``OSError``, also for a path that
    is not a regular file."""
    info = info or os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise OSError(errno.EINVAL, "not a regular file")
    return FileIdentity(
        info.st_size, info.st_mtime_ns, audio_digest(path) or ""
    )


def check_identity(
    recorded: FileIdentity, path: str | bytes | os.PathLike[str]
) -> tuple[AudioCheck, FileIdentity | None]:
    """Whether the file at ``path`` still holds the audio ``recorded``
    was taken from, and its identity now when that took a digest (to be
    recorded, so the next check is one ``stat`` again)."""
    try:
        info = os.stat(path)
        if recorded.same_file(info):
            return AudioCheck.SAME_FILE, None
        now = file_identity(path, info)
    except OSError:
        return AudioCheck.UNKNOWN, None
    if not recorded.digest or not now.digest:
        return AudioCheck.UNKNOWN, now
    if now.digest == recorded.digest:
        return AudioCheck.SAME_AUDIO, now
    return AudioCheck.NEW_AUDIO, now


def audio_digest(path: str | bytes | os.PathLike[str]) -> str | None:
    """16 hex digits of the file's audio payload, without its tags: a
    few slices of the WAV ``data`` chunk, the AIFF ``SSND`` chunk, the
    MP3 frames between ID3v2, APE and ID3v1 tags or an MP4's ``mdat``;
    for Ogg (Vorbis, Opus), the packets of a few audio pages (a tag edit
    may renumber the pages); for FLAC, the MD5 of the decoded audio its
    STREAMINFO holds. None for other formats and for a file that cannot
    be read."""
    try:
        # Non-blocking: a FIFO at the path must not wait for a writer.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(descriptor, "rb") as file:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):  # a device never ends
                return None
            size = info.st_size
            head = file.read(12)
            if head[:4] == b"fLaC" or (
                head[:3] == b"ID3" and _flac_after_id3(file, head)
            ):
                return _flac_md5(file, head)
            if head[:4] == b"OggS":
                return _ogg_digest(file, size)
            payload = _payload(file, head, size)
            if payload is None:
                return None
            offset, length = payload
            return sampled_digest(
                descriptor, offset, length, DIGEST_SLICES, DIGEST_SLICE
            )
    except (OSError, ValueError):  # unreadable, or shorter than it says
        return None


def _payload(file: BinaryIO, head: bytes, size: int) -> tuple[int, int] | None:
    """Where the audio payload lies: (offset, length), or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return _chunk(file, size, b"data", "<I")
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        found = _chunk(file, size, b"SSND", ">I")
        if found is None:
            return None
        start, length = found
        file.seek(start)
        (skip,) = struct.unpack(">I", file.read(4))  # SSND offset field
        return start + 8 + skip, max(0, length - 8 - skip)
    if head[4:8] == b"ftyp":
        return _mp4_mdat(file, size)
    start = _id3v2_size(head)
    file.seek(start)
    if not _mpeg_sync(file.read(2)):
        return None
    return start, _mp3_end(file, size) - start


def _chunk(
    file: BinaryIO, size: int, name: bytes, layout: str
) -> tuple[int, int] | None:
    """The (offset, length) of a RIFF or IFF chunk's data."""
    position = 12
    while position + 8 <= size:
        file.seek(position)
        header = file.read(8)
        (length,) = struct.unpack(layout, header[4:8])
        if header[:4] == name:
            return position + 8, min(length, size - position - 8)
        position += 8 + length + (length & 1)
    return None


def _id3v2_size(head: bytes) -> int:
    if head[:3] != b"ID3" or len(head) < 10:
        return 0
    body = 0
    for byte in head[6:10]:
        body = (body << 7) | (byte & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return 10 + body + footer


def _mpeg_sync(two: bytes) -> bool:
    return len(two) == 2 and two[0] == 0xFF and two[1] & 0xE0 == 0xE0


def _mp3_end(file: BinaryIO, size: int) -> int:
    """Where the frames end: before an ID3v1 and an APE tag."""
    end = size
    if end >= 128:
        file.seek(end - 128)
        if file.read(3) == b"TAG":
            end -= 128
    if end >= 32:
        file.seek(end - 32)
        footer = file.read(32)
        if footer[:8] == b"APETAGEX":
            length, flags = struct.unpack("<I4xI", footer[12:24])
            end -= length + (32 if flags & 0x80000000 else 0)
    return max(0, end)


def _flac_after_id3(file: BinaryIO, head: bytes) -> bool:
    file.seek(_id3v2_size(head))
    return file.read(4) == b"fLaC"


def _flac_md5(file: BinaryIO, head: bytes) -> str | None:
    start = _id3v2_size(head) if head[:3] == b"ID3" else 0
    file.seek(start + 4)
    block = file.read(4 + 34)
    if len(block) < 38 or block[0] & 0x7F != 0:  # STREAMINFO comes first
        return None
    md5 = block[4 + 18 : 4 + 34]
    return None if not any(md5) else md5.hex()[:16]


def _mp4_mdat(file: BinaryIO, size: int) -> tuple[int, int] | None:
    """The (offset, length) of an MP4's first ``mdat`` atom."""
    position = 0
    while position + 8 <= size:
        file.seek(position)
        header = file.read(16)
        length, name = struct.unpack(">I4s", header[:8])
        start = 8
        if length == 1:  # a 64-bit size follows
            (length,) = struct.unpack(">Q", header[8:16])
            start = 16
        elif length == 0:  # to the end of the file
            length = size - position
        if length < start:
            return None
        if name == b"mdat":
            return position + start, min(length, size - position) - start
        position += length
    return None


#: An Ogg page: capture pattern, version, type, granule position, serial,
#: sequence number, checksum, segment count.
_OGG_PAGE = struct.Struct("<4sBBqIIIB")


def _ogg_page(file: BinaryIO, offset: int) -> tuple[int, bytes, int] | None:
    """The page at ``offset``: its granule position, body and size."""
    file.seek(offset)
    header = file.read(_OGG_PAGE.size)
    if len(header) < _OGG_PAGE.size:
        return None
    capture, _, _, granule, _, _, _, segments = _OGG_PAGE.unpack(header)
    if capture != b"OggS":
        return None
    table = file.read(segments)
    body = file.read(sum(table))
    return granule, body, _OGG_PAGE.size + segments + len(body)


def _ogg_digest(file: BinaryIO, size: int) -> str | None:
    """The bodies and granule positions of a few audio pages, found from
    places spread over the audio: the header pages (granule 0, or -1
    while a long comment runs on) are skipped, and a tag edit that
    renumbers the pages changes neither."""
    start = 0
    while True:
        page = _ogg_page(file, start)
        if page is None:
            return None
        granule, _, length = page
        if granule not in (0, -1):
            break
        start += length
    digest = hashlib.blake2b(f"{size - start}".encode(), digest_size=8)
    for n in range(DIGEST_SLICES):
        offset = start + n * (size - start) // DIGEST_SLICES
        file.seek(offset)
        found = file.read(DIGEST_SLICE).find(b"OggS")
        offset += found
        taken = 0
        while found >= 0 and taken < DIGEST_SLICE:
            page = _ogg_page(file, offset)
            if page is None:
                break
            granule, body, length = page
            digest.update(f"{granule}".encode() + body)
            offset += length
            taken += len(body)
    return digest.hexdigest()


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


#: How much of each end of a file :func:`copy_identity` reads.
IDENTITY_SPAN = 1 << 20


@dataclass(frozen=True)
class CopyIdentity:
    """What tells two copies of a file apart cheaply: the size, and a
    digest of the first and last MB (a tag edit, a re-encode and another
    recording of the same length all change it)."""

    size: int
    ends_digest: str

    def difference(self, copy: CopyIdentity) -> str | None:
        """How ``copy`` differs from this file, in a few words, or None."""
        if copy.size != self.size:
            return f"{copy.size:,} bytes there, {self.size:,} here"
        if copy.ends_digest != self.ends_digest:
            return "the same size, but other bytes in its first or last MB"
        return None


def copy_identity(path: str | bytes | os.PathLike[str]) -> CopyIdentity:
    """The size and ends digest of the file at ``path`` (reads 2 MB at
    most; ``OSError`` if it cannot be read)."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            ends = sampled_digest(
                handle.fileno(), 0, size, 2, IDENTITY_SPAN, digest_size=32
            )
        except ValueError as exc:  # shrank while it was read
            raise OSError(str(exc)) from exc
    return CopyIdentity(size, ends)
