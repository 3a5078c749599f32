"""Scratch folders in the temp folder that never outlive their owner.

A run removes its scratch folder when it ends, even when it is stopped by
a signal it can catch. A process killed outright (SIGKILL, a power cut)
cannot: its folder (with a transcoded WAV of 150 MB inside, perhaps)
would stay for good. So every folder carries its owner's process id in
its name, and the next folder made on this machine first removes those
whose owner is gone. A Dask worker keeps its scratch in the worker's own
local directory instead: Dask removes it when the worker closes, and the
next worker there purges the directory of one that was killed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path

#: The start of every scratch folder's name; the owner's pid follows.
PREFIX = "beets-audiofeatures-"


def owner_is_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (another user's counts too)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    except OverflowError:  # no such pid can exist
        return False
    return True


def owner_of(folder: Path) -> int | None:
    """The pid in a scratch folder's name; None for any other name."""
    rest = folder.name.removeprefix(PREFIX)
    if rest == folder.name:
        return None
    pid, sep, _ = rest.partition("-")
    return int(pid) if sep and pid.isdigit() and pid.isascii() else None


#: The name of an earlier version's worker folder.
EARLIER_NAME = re.compile(re.escape(PREFIX) + "[0-9a-f]{32}")
#: An earlier version's empty folder this old is surely no one's.
EARLIER_AGE = 3600.0


def _earlier_empty_folder(folder: Path) -> bool:
    if not EARLIER_NAME.fullmatch(folder.name):
        return False
    try:
        info = folder.lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and time.time() - info.st_mtime > EARLIER_AGE
    )


def sweep_orphans(base: Path | None = None) -> list[Path]:
    """Remove the scratch folders in ``base`` (the temp folder) whose
    owner is gone; the folders removed. Only this user's own folders
    are touched, never through a symbolic link."""
    base = Path(tempfile.gettempdir()) if base is None else base
    removed: list[Path] = []
    try:
        entries = list(base.glob(f"{PREFIX}*"))
    except OSError:
        return removed
    for folder in entries:
        if _earlier_empty_folder(folder):
            # An earlier version's worker folder (no pid in its name),
            # left empty by every cluster worker: only ever removed empty.
            with contextlib.suppress(OSError):
                folder.rmdir()
                removed.append(folder)
            continue
        pid = owner_of(folder)
        if pid is None or pid == os.getpid() or owner_is_alive(pid):
            continue
        try:
            info = folder.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    return removed


def scratch_folder(purpose: str) -> Path:
    """A new, private folder in the temp folder for this process, named
    ``beets-audiofeatures-<pid>-<purpose>-<random>``; the folders of
    processes that are gone are removed first. The caller removes it
    (:func:`remove_scratch`) when done."""
    sweep_orphans()
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-{purpose}-"))


def remove_scratch(folder: Path | str) -> None:
    """Remove a scratch folder and all in it; twice, as a file written
    while the first pass ran (a transcode finishing) stops the folder
    itself from going."""
    for _ in range(2):
        shutil.rmtree(folder, ignore_errors=True)
        if not os.path.lexists(folder):
            return
    with contextlib.suppress(OSError):
        os.rmdir(folder)
