"""SHA-256 digests of model files, remembered between runs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..atomic_files import atomic_write
from .model import ModelError


def default_digest_cache() -> Path:
    """Where weight digests are remembered when the caller names no
    place (the user's cache folder)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "beets-audiofeatures" / "weight-digests.json"


class WeightDigests:
    """SHA-256 digests of model files, remembered in a JSON file by
    resolved path, size, modification and change time and inode: a run
    whose weights did not change reads one small file and stats the
    weights."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.changed = False
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        self.known: dict[str, Any] = known if isinstance(known, dict) else {}

    def digest(self, file: Path) -> str:
        real = file.resolve()
        try:
            info = real.stat()
            # ctime and inode too: a copy that kept the old file's size
            # and date (cp -p, rsync -t) still changes them.
            stamp = [
                info.st_size,
                info.st_mtime_ns,
                info.st_ctime_ns,
                info.st_ino,
            ]
            entry = self.known.get(str(real))
            if isinstance(entry, dict) and entry.get("stamp") == stamp:
                return str(entry["sha256"])
            with open(real, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError as exc:
            raise ModelError(
                f"cannot read the model file {file}: {exc.strerror or exc}"
            ) from exc
        self.known[str(real)] = {"stamp": stamp, "sha256": digest}
        self.changed = True
        return digest

    def save(self) -> None:
        """Write the digests back, without entries for files that are
        gone; a cache that cannot be written costs a re-read next time."""
        if not self.changed:
            return
        kept = {
            name: entry
            for name, entry in self.known.items()
            if os.path.exists(name)
        }
        with contextlib.suppress(OSError), atomic_write(self.path, "w") as out:
            out.write(json.dumps(kept, indent=1, sort_keys=True))
        self.changed = False
