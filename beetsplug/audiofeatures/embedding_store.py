"""The on-disk store of CLAP vectors: one ``.npy`` per track plus an index.

Layout, one folder per model + audio pipeline (its *tag*), so vectors of
different models never mix::

    <cache_dir>/<tag>/model.json           what made these vectors
    <cache_dir>/<tag>/vectors/0012/12345.npy  item 12345, float32 unit vector
    <cache_dir>/<tag>/journal              "+12345" / "-12345", one per change
    <cache_dir>/<tag>/index.npy            all vectors as one matrix
    <cache_dir>/<tag>/index-ids.npy        their item ids, sorted
    <cache_dir>/<tag>/index.json           rows, dimension, journal offset
    <cache_dir>/<tag>/prompts/<sha>.npy    cached text vectors

Every file is written to a temporary name and renamed into place, so a
crash leaves either the old or the new file. A vector is written before
its journal line, and the journal is replayed into the index by the next
reader, so the index never misses a finished vector; replaying twice is
harmless. Writers hold a file lock; the index matrix is memory-mapped.

An empty index is a valid index. A damaged one (unreadable, cut short,
out of step with its journal, or of another dimension than the vectors)
is rebuilt from the vector files with one warning, and a vector file
that cannot be read, or whose size differs from the store's, is removed
so the next ``beet clap`` embeds that track again.

Nothing here imports beets: items are known by their integer ids, which
also means no path from the library ever becomes a path in the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
from filelock import FileLock

SHARD = 1000
INDEX_FILES = ("index.json", "index-ids.npy", "index.npy")


class DamagedIndexError(Exception):
    """The saved index cannot be used; the message says why."""


def _warn(message: str) -> None:
    """One line on beets' log (``audiofeatures: ...``) when beets runs,
    on the standard log otherwise, without making beets' loggers."""
    plugin = logging.Logger.manager.loggerDict.get("beets.audiofeatures")
    if isinstance(plugin, logging.Logger):
        if hasattr(plugin, "_LogMessage"):  # beets' str.format logger
            plugin.warning("{}", message)
        else:
            plugin.warning("%s", message)
    else:
        logging.getLogger("beets.audiofeatures.store").warning("%s", message)


@dataclass(frozen=True)
class Index:
    """All vectors of a store: ``matrix[i]`` belongs to item ``ids[i]``."""

    ids: np.ndarray  # int64, sorted
    matrix: np.ndarray  # float32, len(ids) x dim, usually memory-mapped

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """Rows of the given item ids, ascending (ids without a vector are
        left out)."""
        wanted = (
            ids if isinstance(ids, np.ndarray) else np.fromiter(ids, np.int64)
        )
        if not len(self.ids) or not len(wanted):
            return np.empty(0, np.int64)
        # A lookup table over the (small, non-negative) item ids: one
        # pass, several times faster than sorting or np.isin.
        wanted = wanted[(wanted >= 0) & (wanted <= self.ids[-1])]
        table = np.zeros(int(self.ids[-1]) + 1, bool)
        table[wanted] = True
        return np.flatnonzero(table[self.ids])


def atomic_save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class EmbeddingStore:
    """Vectors of one model + pipeline, keyed by beets item id."""

    def __init__(self, root: Path, tag: str) -> None:
        self.root = Path(root)
        self.tag = tag
        self.folder = self.root / tag
        self._lock = FileLock(str(self.folder / ".lock"))

    # -- per-track vectors ----------------------------------------------

    def open(self, identity: dict[str, Any]) -> EmbeddingStore:
        """Create the folders and record what makes these vectors."""
        (self.folder / "vectors").mkdir(parents=True, exist_ok=True)
        description = self.folder / "model.json"
        if not description.exists():
            _atomic_write_text(
                description, json.dumps(identity, indent=2, sort_keys=True)
            )
        return self

    def vector_path(self, item_id: int) -> Path:
        number = int(item_id)
        if number < 0:
            raise ValueError(f"not an item id: {item_id}")
        return (
            self.folder / "vectors" / f"{number // SHARD:04d}" / f"{number}.npy"
        )

    def put(self, item_id: int, vector: np.ndarray) -> None:
        vector = np.asarray(vector, np.float32)
        if vector.ndim != 1 or not np.isfinite(vector).all():
            raise ValueError(
                f"bad vector for item {item_id}: shape {vector.shape}"
            )
        atomic_save(self.vector_path(item_id), vector)
        self._journal([f"+{int(item_id)}"])

    def get(self, item_id: int) -> np.ndarray | None:
        try:
            return np.load(self.vector_path(item_id))
        except (OSError, ValueError):
            return None

    def has(self, item_id: int) -> bool:
        return self.vector_path(item_id).is_file()

    def discard(self, item_ids: Iterable[int]) -> int:
        """Delete the vectors of these items; how many there were."""
        removed = []
        for item_id in item_ids:
            with contextlib.suppress(FileNotFoundError):
                self.vector_path(item_id).unlink()
                removed.append(f"-{int(item_id)}")
        if removed:
            self._journal(removed)
        return len(removed)

    def disk_ids(self) -> np.ndarray:
        """Item ids that have a vector file, sorted."""
        found = []
        vectors = self.folder / "vectors"
        if vectors.is_dir():
            for shard in os.scandir(vectors):
                if shard.is_dir():
                    for entry in os.scandir(shard.path):
                        stem, _dot, ext = entry.name.partition(".")
                        if ext == "npy" and stem.isdigit():
                            found.append(int(stem))
        return np.array(sorted(found), np.int64)

    def _journal(self, lines: list[str]) -> None:
        with self._lock, open(self.folder / "journal", "ab+") as journal:
            # A crash mid-line leaves a fragment: end it first.
            journal.seek(0, os.SEEK_END)
            if journal.tell():
                journal.seek(-1, os.SEEK_END)
                if journal.read(1) != b"\n":
                    journal.write(b"\n")
            journal.write(("\n".join(lines) + "\n").encode())
            journal.flush()
            os.fsync(journal.fileno())

    # -- the index ------------------------------------------------------

    def index(self) -> Index:
        """The up-to-date index: the journal replayed into the last saved
        matrix, or a full rebuild (with a warning) when the saved one is
        damaged."""
        with self._lock:
            try:
                return self._current_index()
            except DamagedIndexError as exc:
                index = self._write_index(*self._scan())
                _warn(
                    f"the CLAP index in {self.folder} was damaged ({exc}); "
                    f"rebuilt it from the {len(index)} vector files"
                )
                return index

    def rebuild(self) -> Index:
        with self._lock:
            return self._write_index(*self._scan())

    def _current_index(self) -> Index:
        saved = self._load_index()
        journal = self.folder / "journal"
        size = journal.stat().st_size if journal.exists() else 0
        if saved is None:  # never written: nothing to warn about
            return self._write_index(*self._scan())
        index, offset = saved
        if offset > size:
            raise DamagedIndexError("its journal is shorter than it records")
        if offset == size:
            return index
        added, removed = self._read_journal(offset)
        return self._write_index(*self._merge(index, added, removed))

    def _load_index(self) -> tuple[Index, int] | None:
        """The saved index and its journal offset; None when there is
        none yet. Raises ``DamagedIndexError`` when it cannot be used."""
        if not any((self.folder / name).exists() for name in INDEX_FILES):
            return None
        meta = _read_part(
            self.folder / "index.json", lambda p: json.loads(p.read_text())
        )
        ids = _read_part(self.folder / "index-ids.npy", np.load)
        matrix = _read_part(
            self.folder / "index.npy", lambda p: np.load(p, mmap_mode="r")
        )
        if not isinstance(meta, dict):
            raise DamagedIndexError("index.json holds no description")
        if (
            ids.ndim != 1
            or matrix.ndim != 2
            or len(ids) != meta.get("rows")
            or matrix.shape[0] != len(ids)
            or (len(ids) and matrix.shape[1] != meta.get("dim"))
        ):
            raise DamagedIndexError(
                f"{len(ids)} ids, a {'x'.join(map(str, matrix.shape))} "
                f"matrix and {meta.get('rows')} rows recorded do not agree"
            )
        if len(ids) > 1 and not (np.diff(ids) > 0).all():
            raise DamagedIndexError("its ids are out of order")
        try:
            offset = int(meta.get("journal_offset", 0))
        except (TypeError, ValueError) as exc:
            raise DamagedIndexError(
                "its journal offset is not a number"
            ) from exc
        return Index(ids, matrix), offset

    def _read_journal(self, offset: int) -> tuple[set[int], set[int]]:
        added: set[int] = set()
        removed: set[int] = set()
        with open(self.folder / "journal", "rb") as journal:
            journal.seek(offset)
            for line in journal.read().split(b"\n"):
                sign, number = line[:1], line[1:]
                if not number.isdigit():
                    continue  # an unfinished line from a crash
                item_id = int(number)
                if sign == b"+":
                    added.add(item_id)
                    removed.discard(item_id)
                elif sign == b"-":
                    removed.add(item_id)
                    added.discard(item_id)
        return added, removed

    def _scan(self) -> tuple[np.ndarray, np.ndarray]:
        """Every vector file read into a new index. Files that cannot be
        read, or whose size is not the store's (the most common one), are
        removed: their tracks count as not embedded and are embedded
        again by the next run."""
        found: dict[int, np.ndarray] = {}
        bad = []
        for item_id in self.disk_ids().tolist():
            vector = self.get(item_id)
            if _is_vector(vector):
                found[item_id] = vector
            else:
                bad.append(item_id)
        sizes = Counter(len(vector) for vector in found.values())
        if len(sizes) > 1:
            size = sizes.most_common(1)[0][0]
            bad += [i for i, vector in found.items() if len(vector) != size]
            found = {i: v for i, v in found.items() if len(v) == size}
        if bad:
            for item_id in bad:
                self.vector_path(item_id).unlink(missing_ok=True)
            _warn(
                f"removed {len(bad)} damaged vector files from {self.folder} "
                f"(items {_some(sorted(bad))}); beet clap embeds them again"
            )
        ids = sorted(found)
        return _as_index(ids, [found[i] for i in ids])

    def _merge(
        self, index: Index, added: set[int], removed: set[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        changed = np.fromiter(added | removed, np.int64)
        keep = ~np.isin(index.ids, changed)
        new_ids = []
        new_rows = []
        for item_id in sorted(added):
            vector = self.get(item_id)
            if vector is None and not self.has(item_id):
                continue  # removed again since
            if not _is_vector(vector):
                raise DamagedIndexError(
                    f"the vector file of item {item_id} cannot be read"
                )
            new_ids.append(item_id)
            new_rows.append(vector)
        kept_ids = index.ids[keep]
        try:
            ids, rows = _as_index(new_ids, new_rows)
        except ValueError as exc:
            raise DamagedIndexError(str(exc)) from exc
        if not len(kept_ids):  # an empty index fits any dimension
            return ids, rows
        if len(ids) and rows.shape[1] != _dim(index.matrix):
            raise DamagedIndexError(
                f"new vectors have {rows.shape[1]} values, the index "
                f"{_dim(index.matrix)}"
            )
        kept = np.asarray(index.matrix[keep])
        if not len(ids):
            return kept_ids, kept
        all_ids = np.concatenate([kept_ids, ids])
        order = np.argsort(all_ids, kind="stable")
        matrix = np.concatenate([kept, rows])
        return all_ids[order], matrix[order]

    def _write_index(self, ids: np.ndarray, matrix: np.ndarray) -> Index:
        atomic_save(
            self.folder / "index.npy", np.ascontiguousarray(matrix, np.float32)
        )
        atomic_save(self.folder / "index-ids.npy", ids)
        journal = self.folder / "journal"
        # The journal is only emptied after the index holding it is safe.
        meta = {"rows": len(ids), "dim": _dim(matrix), "journal_offset": 0}
        _atomic_write_text(self.folder / "index.json", json.dumps(meta))
        with open(journal, "wb"):
            pass
        return Index(ids, np.load(self.folder / "index.npy", mmap_mode="r"))

    # -- prompts ----------------------------------------------------------

    def get_logit_scale(self) -> float | None:
        try:
            return float(
                json.loads((self.folder / "logit_scale.json").read_text())
            )
        except (OSError, ValueError):
            return None

    def put_logit_scale(self, value: float) -> None:
        _atomic_write_text(self.folder / "logit_scale.json", json.dumps(value))

    def prompt_path(self, text: str) -> Path:
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        return self.folder / "prompts" / f"{digest}.npy"

    def get_prompt(self, text: str) -> np.ndarray | None:
        try:
            return np.load(self.prompt_path(text))
        except (OSError, ValueError):
            return None

    def put_prompt(self, text: str, vector: np.ndarray) -> None:
        atomic_save(self.prompt_path(text), np.asarray(vector, np.float32))


def stores(root: Path) -> Iterator[EmbeddingStore]:
    """Every model's store under a cache directory."""
    if Path(root).is_dir():
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            if entry.is_dir() and os.path.exists(
                os.path.join(entry.path, "model.json")
            ):
                yield EmbeddingStore(Path(root), entry.name)


def _dim(matrix: np.ndarray) -> int:
    return int(matrix.shape[1]) if matrix.ndim == 2 else 0


def _is_vector(vector: np.ndarray | None) -> TypeGuard[np.ndarray]:
    return (
        vector is not None
        and vector.ndim == 1
        and len(vector) > 0
        and vector.dtype.kind == "f"
        and bool(np.isfinite(vector).all())
    )


def _some(ids: list[int], shown: int = 5) -> str:
    text = ", ".join(map(str, ids[:shown]))
    return text + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


def _read_part(path: Path, read: Callable[[Path], Any]) -> Any:
    """One file of the saved index; ``DamagedIndexError`` saying which
    and how, in a few words, when it cannot be read."""
    try:
        return read(path)
    except FileNotFoundError as exc:
        raise DamagedIndexError(f"{path.name} is missing") from exc
    except OSError as exc:
        raise DamagedIndexError(f"{path.name}: {exc.strerror or exc}") from exc
    except (ValueError, EOFError) as exc:  # JSONDecodeError included
        raise DamagedIndexError(f"{path.name} is cut short or garbled") from exc


def _as_index(
    ids: list[int], rows: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return np.empty(0, np.int64), np.empty((0, 0), np.float32)
    sizes = {len(row) for row in rows}
    if len(sizes) != 1:
        raise ValueError(
            f"vectors of different sizes in one store: {sorted(sizes)}"
        )
    return np.array(ids, np.int64), np.stack(rows).astype(np.float32)
