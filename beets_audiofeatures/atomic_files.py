"""Files written whole or not at all, with the mode any program's file
gets: a new file 0666 less the umask (``tempfile.mkstemp`` makes 0600,
which a media server running as another user cannot read), a replaced
file keeps the mode it had."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

#: What ``open()`` asks for; the kernel takes the umask off.
NEW_FILE_MODE = 0o666


def temporary_beside(target: str | Path) -> tuple[int, Path]:
    """A new, empty temporary file in ``target``'s folder, open for
    writing (its descriptor and path), to be renamed over ``target``: of
    ``target``'s mode when that exists, else of 0666 less the umask."""
    target = Path(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, flags, NEW_FILE_MODE)
        except FileExistsError:
            continue
        break
    try:
        existing = os.stat(target)
    except OSError:
        return fd, tmp  # a new file: the mode open() gave it
    if stat.S_ISREG(existing.st_mode):
        with contextlib.suppress(OSError):  # someone else's file: as new
            os.fchmod(fd, stat.S_IMODE(existing.st_mode))
    return fd, tmp


def sync_folder(folder: str | Path) -> None:
    """Bring a folder's entries (names made, renamed, removed) to disk,
    where the system allows it (best effort: some file systems cannot
    sync a folder, and the rename it follows has happened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """A temporary file beside ``path`` to write; when the block ends it
    is flushed to disk and renamed over ``path`` (and the rename brought
    to disk), and when the block fails it is removed. A crash leaves the
    old file or the new one, never a part of one. The folder is created
    if needed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temporary_beside(target)
    encoding = None if "b" in mode else "utf-8"
    try:
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    sync_folder(target.parent)


def atomic_save(path: str | Path, array: np.ndarray) -> None:
    """``np.save``, atomically."""
    with atomic_write(path) as handle:
        np.save(handle, array)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)
