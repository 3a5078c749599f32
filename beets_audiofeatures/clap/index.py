"""The search index of a store: every current vector as one
memory-mapped matrix, with the item id and source key of each row, and
the files it is saved in (written whole, then the journal emptied).

    index.npy        all vectors as one matrix
    index-ids.npy    their item ids, sorted
    index-keys.npy   the key of each row's source
    index.json       rows, dimension, journal offset
    journal          "+12345 <key>" / "-12345": changes since

No beets here.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic_files import atomic_save, atomic_write_text
from ..errors import StoreError
from . import engine

INDEX_FILES = ("index.json", "index-ids.npy", "index-keys.npy", "index.npy")
KEY_DTYPE = "<U32"


class DamagedIndexError(StoreError):
    """The saved index cannot be used; the message says why."""


@dataclass(frozen=True)
class Index:
    """All vectors of a store: ``matrix[i]`` belongs to item ``ids[i]``
    and was computed from the source named ``keys[i]``."""

    ids: np.ndarray  # int64, sorted
    matrix: np.ndarray  # float32, len(ids) x dim, usually memory-mapped
    keys: np.ndarray  # str, one per row
    #: the 8-bit copy faiss scans for candidates (``engine``), if any
    engine: Any = field(default=None, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

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
        wanted = wanted[(wanted >= 0) & (wanted <= self.ids[-1])]
        table = np.zeros(int(self.ids[-1]) + 1, bool)
        table[wanted] = True
        rows = np.flatnonzero(table[self.ids])
        if keys is None:
            return rows
        current = np.array(
            [keys.get(i) == k for i, k in zip(
                self.ids[rows].tolist(), self.keys[rows].tolist(), strict=True
            )],
            bool,
        )  # fmt: skip
        kept: np.ndarray = rows[current]
        return kept

    def row(self, item_id: int) -> int | None:
        """The row of the item's vector, None when it has none (one
        binary search: for one item, ``positions`` would build a table
        the size of the largest id)."""
        row = int(np.searchsorted(self.ids, item_id))
        if row < len(self.ids) and self.ids[row] == item_id:
            return row
        return None

    def key(self, item_id: int) -> str | None:
        """The key of the item's vector, None when it has none."""
        row = self.row(item_id)
        return None if row is None else str(self.keys[row])


def is_key(key: str) -> bool:
    """Whether ``key`` can be a source key (empty: a vector of 0.1)."""
    return not key or key.isalnum()


def dim(matrix: np.ndarray) -> int:
    return int(matrix.shape[1]) if matrix.ndim == 2 else 0


def load_index(folder: Path) -> tuple[Index, int] | None:
    """The saved index and its journal offset; None when there is
    none yet. Raises ``DamagedIndexError`` when it cannot be used."""
    if not any((folder / name).exists() for name in INDEX_FILES):
        return None
    meta = _read_part(
        folder / "index.json", lambda p: json.loads(p.read_text())
    )
    if (
        not (folder / "index-keys.npy").exists()
        and (folder / "index-ids.npy").exists()
    ):
        return None  # an index from before keys: rebuilt, silently
    ids = _read_part(folder / "index-ids.npy", np.load)
    keys = _read_part(folder / "index-keys.npy", np.load)
    matrix = _read_part(
        folder / "index.npy", lambda p: np.load(p, mmap_mode="r")
    )
    if not isinstance(meta, dict):
        raise DamagedIndexError("index.json holds no description")
    if (
        ids.ndim != 1
        or matrix.ndim != 2
        or len(ids) != meta.get("rows")
        or matrix.shape[0] != len(ids)
        or keys.shape != ids.shape
        or keys.dtype.kind != "U"
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
        raise DamagedIndexError("its journal offset is not a number") from exc
    shards = meta.get("scan_shards", 0)
    scan = engine.load(
        folder,
        str(meta.get("generation", "")),
        shards if isinstance(shards, int) else 0,
        len(ids),
        dim(matrix),
    )
    return Index(ids, matrix, keys, scan), offset


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
    folder: Path, ids: np.ndarray, matrix: np.ndarray, keys: np.ndarray
) -> Index:
    atomic_save(folder / "index.npy", np.ascontiguousarray(matrix, np.float32))
    atomic_save(folder / "index-keys.npy", keys.astype(KEY_DTYPE))
    atomic_save(folder / "index-ids.npy", ids)
    # The 8-bit copy is named by this write's generation, recorded last
    # in index.json: a reader never pairs a matrix with another's copy.
    generation = secrets.token_hex(8)
    shards = engine.build(folder, generation, matrix)
    journal = folder / "journal"
    # The journal is only emptied after the index holding it is safe.
    meta = {
        "rows": len(ids),
        "dim": dim(matrix),
        "journal_offset": 0,
        "generation": generation,
        "scan_shards": shards,
    }
    atomic_write_text(folder / "index.json", json.dumps(meta))
    engine.remove_others(folder, generation)
    with open(journal, "wb"):
        pass
    return Index(
        ids,
        np.load(folder / "index.npy", mmap_mode="r"),
        keys.astype(KEY_DTYPE),
        engine.load(folder, generation, shards, len(ids), dim(matrix)),
    )


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
