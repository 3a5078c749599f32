"""The search index of a store: every current vector in one memory-mapped
matrix, with the item id and source key of each row.

A *generation* of the index is a base (rows sorted by item id, with the
scan engine's copy) and rows appended since, in the same files::

    index.json            the current generation and its counts
    index-<gen>.f32       float32 rows: the base, then the appended rows
    index-<gen>.ids       int64, the item id of each row
    index-<gen>.keys      32 bytes, the source key of each row
    index-<gen>.dead      int64, rows masked since (removed or replaced)
    index-<gen>-<n>.sq8   the scan engine's copy of the base (``engine``),
    index-<gen>.scale     and the range of its codes
    journal               "+12345 <key>" / "-12345": changes since

Every file is on disk (the file and its folder synced) before
``index.json`` names it, and ``index.json`` records a digest of each
(``DIGEST_BLOCKS`` blocks spread over it, and its length): a file found
zero-filled, garbled or cut short makes the index damaged, so the store
rebuilds it from the vector files with one warning rather than search a
wrong copy. A write that fails removes the generation it was writing.

Appending writes past the ends the current ``index.json`` records and
then replaces ``index.json``; rows past its counts (a writer that died)
are cut off by the next writer and never read. A merge writes a new
generation whole, then ``index.json`` naming it, then deletes the old
one. So a reader, even one that takes no lock, always sees a complete
index, and a writer killed at any point loses nothing: the journal still
holds what the index does not.

No beets here.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic_files import atomic_write_text, sync_folder
from ..errors import StoreError
from ..sampled_digest import sampled_digest
from . import engine

FORMAT = 2
KEY_DTYPE = "S32"
#: Files of the index before generations: removed when a new one is
#: written.
OLD_FILES = ("index.npy", "index-ids.npy", "index-keys.npy")
#: The parts of a generation, and the dtype of each one's rows.
PARTS = {
    "f32": np.float32,
    "ids": np.int64,
    "keys": KEY_DTYPE,
    "dead": np.int64,
}

#: Blocks of a file read for its digest, spread evenly over it: any large
#: part zero-filled or garbled changes the digest, for a few reads
#: whatever the file's size (a checksum of every byte of a million rows'
#: 2 GB would add most of a second to every load).
DIGEST_BLOCKS = 16
DIGEST_BLOCK = 4096


class DamagedIndexError(StoreError):
    """The saved index cannot be used; the message says why."""


@dataclass(frozen=True)
class Index:
    """All vectors of a store: ``matrix[i]`` belongs to item ``ids[i]``
    and was computed from the source named ``keys[i]``, unless row ``i``
    is masked (``live[i]`` False). The first ``base`` rows are sorted by
    id; rows appended since follow them."""

    ids: np.ndarray  # int64
    matrix: np.ndarray  # float32, rows x dim, usually memory-mapped
    keys: np.ndarray  # S32, one per row
    #: which rows hold a current vector; None: all of them
    live: np.ndarray | None = field(default=None, compare=False, repr=False)
    #: rows sorted by id (and in the scan engine's copy); -1: all
    base: int = -1
    #: the 8-bit copy faiss scans for candidates (``engine``), if any
    engine: Any = field(default=None, compare=False, repr=False)
    #: the largest item id (0 when empty)
    top_id: int = field(default=-1, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.base < 0:
            object.__setattr__(self, "base", len(self.ids))
        if self.top_id < 0:
            top = int(self.ids.max()) if len(self.ids) else 0
            object.__setattr__(self, "top_id", top)

    def __len__(self) -> int:
        """How many vectors (masked rows do not count)."""
        if self.live is None:
            return len(self.ids)
        return int(np.count_nonzero(self.live))

    @property
    def size(self) -> int:
        """How many rows, masked ones included."""
        return len(self.ids)

    @property
    def appended(self) -> int:
        """Rows appended since the base."""
        return len(self.ids) - self.base

    def live_rows(self) -> np.ndarray | None:
        """The rows that hold vectors, ascending; None: all rows."""
        return None if self.live is None else np.flatnonzero(self.live)

    def positions(
        self,
        ids: Iterable[int] | np.ndarray,
        keys: Mapping[int, str] | None = None,
    ) -> np.ndarray:
        """Rows of the given item ids, ascending (ids without a vector are
        left out; with ``keys``, so are rows whose key is not the item's
        current one)."""
        wanted = (
            ids if isinstance(ids, np.ndarray) else np.fromiter(ids, np.int64)
        )
        if not len(self.ids) or not len(wanted):
            return np.empty(0, np.int64)
        # A lookup table over the (small, non-negative) item ids: one
        # pass, several times faster than sorting or np.isin.
        wanted = wanted[(wanted >= 0) & (wanted <= self.top_id)]
        table = np.zeros(self.top_id + 1, bool)
        table[wanted] = True
        hit = table[self.ids]
        if self.live is not None:
            hit &= self.live
        rows = np.flatnonzero(hit)
        if keys is None:
            return rows
        if not isinstance(keys, SourceKeys):
            keys = SourceKeys(keys)
        kept: np.ndarray = rows[keys.current(self.ids[rows], self.keys[rows])]
        return kept

    def row(self, item_id: int) -> int | None:
        """The row of the item's vector, None when it has none (a binary
        search of the base, then a look at the rows appended since)."""
        found = None
        row = int(np.searchsorted(self.ids[: self.base], item_id))
        if row < self.base and self.ids[row] == item_id:
            found = row
        if self.appended:
            later = np.flatnonzero(self.ids[self.base :] == item_id)
            if len(later):
                found = self.base + int(later[-1])
        if found is None or (self.live is not None and not self.live[found]):
            return None
        return found

    def key(self, item_id: int) -> str | None:
        """The key of the item's vector, None when it has none."""
        row = self.row(item_id)
        return None if row is None else self.key_at(row)

    @property
    def scan_kind(self) -> str:
        """The kind of the scan engine's copy ("": none, exact search)."""
        return str(self.engine.kind) if self.engine is not None else ""

    def key_at(self, row: int) -> str:
        return bytes(self.keys[row]).decode()

    def item_keys(self) -> dict[int, str]:
        """Every item with a vector, and its key."""
        rows = self.live_rows()
        ids = self.ids if rows is None else self.ids[rows]
        keys = self.keys if rows is None else self.keys[rows]
        return {
            i: k.decode()
            for i, k in zip(ids.tolist(), keys.tolist(), strict=True)
        }


class SourceKeys(Mapping[int, str]):
    """Items' current source keys by item id, read-only, and the same as
    two sorted arrays (made when first needed): every row of an index is
    checked against them in one numpy comparison, not a dictionary look
    up per row (100k rows: 2 ms instead of 60)."""

    def __init__(self, keys: Mapping[int, str]) -> None:
        self._keys = dict(keys)
        self._last: tuple[Index, np.ndarray] | None = None

    def __getitem__(self, item_id: int) -> str:
        return self._keys[item_id]

    def __iter__(self) -> Iterator[int]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    @cached_property
    def ids(self) -> np.ndarray:
        """The item ids, as the mapping holds them."""
        return np.fromiter(self._keys, np.int64, len(self._keys))

    @cached_property
    def _sorted(self) -> tuple[np.ndarray, np.ndarray]:
        """The ids ascending, and each one's key as bytes (as wide as the
        widest key: a longer one never equals a stored key)."""
        order = np.argsort(self.ids, kind="stable")
        keys = np.array([key.encode() for key in self._keys.values()])
        return self.ids[order], keys[order]

    def rows_of(self, index: Index) -> np.ndarray:
        """Every row of ``index`` whose key is current, ascending (read
        only): kept for the last index asked about, which a server asks
        about again until the store changes (it then reads a new one)."""
        last = self._last
        if last is not None and last[0] is index:
            return last[1]
        rows = index.positions(self.ids, self)
        rows.flags.writeable = False
        self._last = (index, rows)
        return rows

    def current(self, ids: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Whether each stored key (``keys[i]``, of item ``ids[i]``) is
        that item's current one; False for an item without a key."""
        known, known_keys = self._sorted
        if not len(known):
            return np.zeros(len(ids), bool)
        at = np.minimum(np.searchsorted(known, ids), len(known) - 1)
        matches: np.ndarray = (known[at] == ids) & (known_keys[at] == keys)
        return matches


def is_key(key: str) -> bool:
    """Whether ``key`` can be a source key (empty: a vector of 0.1)."""
    return not key or (key.isalnum() and key.isascii() and len(key) <= 32)


def dim(matrix: np.ndarray) -> int:
    return int(matrix.shape[1]) if matrix.ndim == 2 else 0


def load_index(
    folder: Path, options: engine.ScanOptions | None = None
) -> tuple[Index, int] | None:
    """The saved index and its journal offset; None when there is
    none yet (or only one of an earlier version, rebuilt silently).
    Raises ``DamagedIndexError`` when it cannot be used."""
    description = folder / "index.json"
    if not description.exists():
        if any((folder / name).exists() for name in OLD_FILES):
            return None
        if any(folder.glob("index-*.f32")):
            raise DamagedIndexError("index.json is missing")
        return None
    meta = _read_part(description, lambda p: json.loads(p.read_text()))
    if not isinstance(meta, dict):
        raise DamagedIndexError("index.json holds no description")
    if meta.get("format") != FORMAT:
        return None
    try:
        generation = str(meta["generation"])
        rows, width = int(meta["rows"]), int(meta["dim"])
        base, dead = int(meta["base"]), int(meta["dead"])
        offset = int(meta["journal_offset"])
        shards = int(meta.get("scan_shards", 0))
        kind = str(meta.get("scan", ""))
    except (KeyError, TypeError, ValueError) as exc:
        raise DamagedIndexError(f"index.json lacks {exc}") from exc
    if not 0 <= base <= rows or dead < 0 or (rows and width < 1):
        raise DamagedIndexError(
            f"index.json records {rows} rows, {base} of them in the base, "
            f"of dimension {width}"
        )
    shapes = {
        "f32": (rows, width),
        "ids": (rows,),
        "keys": (rows,),
        "dead": (dead,),
    }
    digests = meta.get("digests")
    if digests is not None:  # an index written before digests has none
        _check_digests(folder, digests)
    arrays: dict[str, np.ndarray] = {}
    for part, dtype in PARTS.items():
        path = engine.generation_file(folder, generation, part)
        arrays[part] = _read_part(
            path,
            lambda p: _map(p, dtype, shapes[part]),  # noqa: B023
        )
    ids, dead_rows = arrays["ids"], arrays["dead"]
    live = None
    if dead:
        if dead_rows.min() < 0 or dead_rows.max() >= rows:
            raise DamagedIndexError("it masks rows it does not have")
        live = np.ones(rows, bool)
        live[dead_rows] = False
    nprobe = (options or engine.ScanOptions()).nprobe
    try:
        scan = engine.load(
            folder, generation, kind, shards, (base, width), nprobe
        )
    except ValueError as exc:
        raise DamagedIndexError(str(exc)) from exc
    index = Index(ids, arrays["f32"], arrays["keys"], live, base, scan)
    return index, offset


def _map(path: Path, dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
    """The first ``shape`` rows of a raw file, memory-mapped (bytes past
    them are a dead writer's and are ignored)."""
    needed = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if path.stat().st_size < needed:
        raise ValueError(f"{path.name} is shorter than recorded")
    if needed == 0:
        return np.empty(shape, dtype)
    return np.memmap(path, dtype, "r", shape=shape)


def read_journal(folder: Path, offset: int) -> tuple[dict[int, str], set[int]]:
    added: dict[int, str] = {}
    removed: set[int] = set()
    with open(folder / "journal", "rb") as journal:
        journal.seek(offset)
        for line in journal.read().split(b"\n"):
            sign, rest = line[:1], line[1:].decode(errors="replace")
            number, _space, key = rest.partition(" ")
            if not number.isdigit() or not is_key(key):
                continue  # an unfinished line from a crash
            item_id = int(number)
            if sign == b"+":
                added[item_id] = key
                removed.discard(item_id)
            elif sign == b"-":
                removed.add(item_id)
                added.pop(item_id, None)
    return added, removed


def write_index(
    folder: Path,
    ids: np.ndarray,
    matrix: np.ndarray,
    keys: np.ndarray,
    options: engine.ScanOptions | None = None,
) -> Index:
    """Write a new generation holding these rows (sorted by id), name it
    in ``index.json``, delete the others and empty the journal."""
    generation = secrets.token_hex(8)
    matrix = np.ascontiguousarray(matrix, np.float32)
    parts = {
        "f32": matrix,
        "ids": np.asarray(ids, np.int64),
        "keys": np.asarray(keys).astype(KEY_DTYPE),
        "dead": np.empty(0, np.int64),
    }
    try:
        for part, values in parts.items():
            with open(
                engine.generation_file(folder, generation, part), "wb"
            ) as target:
                _write_rows(target, values)
        kind, shards = engine.build(folder, generation, matrix, options)
        meta = {
            "format": FORMAT,
            "generation": generation,
            "rows": len(ids),
            "base": len(ids),
            "dead": 0,
            "dim": dim(matrix),
            "journal_offset": 0,
            "scan": kind,
            "scan_shards": shards,
            "digests": {
                path.name: _digest(path, path.stat().st_size)
                for path in _generation_files(folder, generation)
            },
        }
        # The generation exists only once index.json names it, and
        # index.json names it only once its files are on disk.
        sync_folder(folder)
        atomic_write_text(folder / "index.json", json.dumps(meta))
    except BaseException:
        if _named_generation(folder) != generation:
            _remove_generation(folder, generation)
        raise
    remove_others(folder, generation)
    # The journal is only emptied after the index holding it is safe.
    with open(folder / "journal", "wb"):
        pass
    saved = load_index(folder, options)
    assert saved is not None
    return saved[0]


def append_index(
    folder: Path,
    new: tuple[np.ndarray, np.ndarray, np.ndarray],
    masked: np.ndarray,
    journal_offset: int,
    options: engine.ScanOptions | None = None,
) -> Index:
    """Append rows (ids, vectors, keys) and masked rows to the current
    generation, recording the journal as read up to ``journal_offset``.
    Each file is cut back to what ``index.json`` records first: a writer
    that died mid-append left its rows past there."""
    meta = json.loads((folder / "index.json").read_text())
    generation = meta["generation"]
    ids, matrix, keys = new
    if len(ids) and not meta["rows"]:
        meta["dim"] = dim(matrix)
    parts: dict[str, tuple[int, np.ndarray]] = {
        "f32": (meta["rows"], np.ascontiguousarray(matrix, np.float32)),
        "ids": (meta["rows"], np.asarray(ids, np.int64)),
        "keys": (meta["rows"], np.asarray(keys).astype(KEY_DTYPE)),
        "dead": (meta["dead"], np.asarray(masked, np.int64)),
    }
    ends: dict[str, int] = {}
    try:
        for part, (recorded, values) in parts.items():
            path = engine.generation_file(folder, generation, part)
            width = np.dtype(PARTS[part]).itemsize * (  # type: ignore[call-overload]
                meta["dim"] if part == "f32" else 1
            )
            with open(path, "r+b") as target:
                target.truncate(recorded * width)
                target.seek(0, os.SEEK_END)
                _write_rows(target, values)
                ends[path.name] = target.tell()
        meta.update(
            rows=meta["rows"] + len(ids),
            dead=meta["dead"] + len(masked),
            journal_offset=journal_offset,
        )
        # Every file's digest anew (an index written before digests
        # gets them now; the base was checked when it was loaded).
        meta["digests"] = {
            path.name: _digest(path, ends.get(path.name, path.stat().st_size))
            for path in _generation_files(folder, generation)
        }
        atomic_write_text(folder / "index.json", json.dumps(meta))
    except BaseException:
        # Rows past the recorded ends are never read: give their space
        # back now (a full disk is the likeliest cause).
        for part, (recorded, _values) in parts.items():
            width = np.dtype(PARTS[part]).itemsize * (  # type: ignore[call-overload]
                meta["dim"] if part == "f32" else 1
            )
            with contextlib.suppress(OSError):
                os.truncate(
                    engine.generation_file(folder, generation, part),
                    recorded * width,
                )
        raise
    remove_others(folder, generation)  # a merge that died left these
    saved = load_index(folder, options)
    assert saved is not None
    return saved[0]


def _write_rows(target: Any, values: np.ndarray) -> None:
    target.flush()
    # No copy of the rows; a full disk is an OSError with its errno
    # (ndarray.tofile says "8704 requested and 0 written").
    target.write(np.ascontiguousarray(values).data)
    target.flush()
    os.fsync(target.fileno())


def _generation_files(folder: Path, generation: str) -> list[Path]:
    return sorted(folder.glob(f"index-{generation}[.-]*"))


def _remove_generation(folder: Path, generation: str) -> None:
    """Delete what a failed write of ``generation`` left."""
    for path in _generation_files(folder, generation):
        with contextlib.suppress(OSError):
            path.unlink()


def _named_generation(folder: Path) -> str | None:
    """The generation ``index.json`` names now, None if unreadable."""
    try:
        return str(
            json.loads((folder / "index.json").read_text())["generation"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _digest(path: Path, length: int) -> list[Any]:
    """``[length, digest]`` of the first ``length`` bytes of a file
    (``DIGEST_BLOCKS`` blocks spread over them); ``ValueError`` when the
    file is shorter than that."""
    fd = os.open(path, os.O_RDONLY)
    try:
        found = sampled_digest(fd, 0, length, DIGEST_BLOCKS, DIGEST_BLOCK)
    finally:
        os.close(fd)
    return [length, found]


def _check_digests(folder: Path, digests: Any) -> None:
    """``DamagedIndexError`` unless every file ``index.json`` records a
    digest of is there and still of that digest."""
    if not isinstance(digests, dict):
        raise DamagedIndexError("index.json holds no digests")
    for name, recorded in digests.items():
        if not isinstance(recorded, list) or len(recorded) != 2:
            raise DamagedIndexError("index.json holds no digests")
        found = _read_part(
            folder / str(name),
            lambda p: _digest(p, int(recorded[0])),  # noqa: B023
        )
        if found != recorded:
            raise DamagedIndexError(
                f"{name} is not what index.json records (zero-filled or "
                "garbled)"
            )


def remove_others(folder: Path, generation: str) -> None:
    """Delete the files of other generations (and of the index before
    generations)."""
    for old in folder.glob("index-*"):
        if not old.name.startswith(f"index-{generation}"):
            old.unlink(missing_ok=True)
    for name in OLD_FILES:
        (folder / name).unlink(missing_ok=True)


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


def as_index(
    ids: list[int], rows: list[np.ndarray], keys: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not rows:
        return (
            np.empty(0, np.int64),
            np.empty((0, 0), np.float32),
            np.empty(0, KEY_DTYPE),
        )
    sizes = {len(row) for row in rows}
    if len(sizes) != 1:
        raise ValueError(
            f"vectors of different sizes in one store: {sorted(sizes)}"
        )
    return (
        np.array(ids, np.int64),
        np.stack(rows).astype(np.float32),
        np.array(keys, KEY_DTYPE),
    )
