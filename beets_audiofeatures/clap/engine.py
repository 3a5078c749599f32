"""The scan engine: an 8-bit copy of the index, scanned by faiss.

Scoring every row of a float32 index reads 2 KB per track (2 GB at a
million tracks); faiss's 8-bit scalar quantizer reads a quarter of that.
The scan only picks candidates: ``RERANK`` times as many rows as asked
for are scored again exactly from the float32 matrix, so the results
(scores and order) are those of exact search whenever the true best rows
are among the candidates (recall@50 measured 1.000 at a million rows,
``benchmarks/clap_search.py``).

The copy is derived: written with the index it was built from (named by
the index's generation, so a reader never pairs a matrix with another
one's copy) and rebuilt with it. Below ``MIN_ROWS`` there is none: numpy
scores a small index faster than faiss opens a file. Without faiss
(``pip install faiss-cpu``) the numpy path is the only one. No beets.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

#: Smallest index that gets an 8-bit copy.
MIN_ROWS = 20_000
#: Most shards (threads) one query scans at once.
MAX_SHARDS = 8
#: Candidates per wanted result, scored again exactly.
RERANK = 4
#: Fewest candidates, for small limits.
MIN_CANDIDATES = 64
#: From this share of the index on, a filtered query scans every row
#: (faster than skipping rows by a bitmap) and keeps the subset's.
OVERFETCH_SHARE = 0.25


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def engine_name(generation: str, shard: int) -> str:
    return f"index-{generation}-{shard}.sq8"


def shard_count(rows: int) -> int:
    """One shard per core (faiss scans one query on one thread), none
    smaller than ``MIN_ROWS``."""
    return max(1, min(os.cpu_count() or 1, MAX_SHARDS, rows // MIN_ROWS))


class Scan:
    """The 8-bit copy, in shards of consecutive rows scanned at once."""

    def __init__(self, shards: list[Any]) -> None:
        self.shards = shards
        self.starts = np.cumsum([0] + [s.ntotal for s in shards])[:-1]
        self.ntotal = int(sum(s.ntotal for s in shards))
        self.d = int(shards[0].d)

    def search(
        self, query: np.ndarray, wanted: int, table: np.ndarray | None = None
    ) -> np.ndarray:
        """Row positions of the best ``wanted`` rows (among the rows
        ``table`` marks, if given), best first."""
        faiss = _faiss()

        def one(shard: int) -> tuple[np.ndarray, np.ndarray]:
            index = self.shards[shard]
            params = None
            if table is not None:
                start = self.starts[shard]
                part = table[start : start + index.ntotal]
                bitmap = np.packbits(part, bitorder="little")
                params = faiss.SearchParameters(
                    sel=faiss.IDSelectorBitmap(
                        index.ntotal, faiss.swig_ptr(bitmap)
                    )
                )
                scores, found = index.search(query, wanted, params=params)
            else:
                scores, found = index.search(query, wanted)
            keep = found[0] >= 0
            return scores[0][keep], found[0][keep] + self.starts[shard]

        if len(self.shards) == 1:
            parts = [one(0)]
        else:
            parts = list(
                _threads(len(self.shards)).map(one, range(len(self.shards)))
            )
        scores = np.concatenate([p[0] for p in parts])
        rows = np.concatenate([p[1] for p in parts])
        best: np.ndarray = rows[np.argsort(-scores, kind="stable")[:wanted]]
        return best


@functools.lru_cache(maxsize=1)
def _threads(count: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(count, thread_name_prefix="clap-scan")


def build(folder: Path, generation: str, matrix: np.ndarray) -> int:
    """Write the 8-bit copy of ``matrix`` in shards; how many (0: the
    index is too small, or there is no faiss). Each file is written
    under a temporary name and renamed, like every store file."""
    faiss = _faiss()
    rows = len(matrix)
    if faiss is None or rows < MIN_ROWS or matrix.ndim != 2:
        return 0
    trained = faiss.IndexScalarQuantizer(
        matrix.shape[1],
        faiss.ScalarQuantizer.QT_8bit,
        faiss.METRIC_INNER_PRODUCT,
    )
    step = 100_000
    sample = np.ascontiguousarray(matrix[:: max(1, rows // step)], np.float32)
    trained.train(sample)  # the range of each dimension
    count = shard_count(rows)
    for shard in range(count):
        low, high = shard * rows // count, (shard + 1) * rows // count
        index = faiss.clone_index(trained)
        for start in range(low, high, step):
            stop = min(high, start + step)
            index.add(np.ascontiguousarray(matrix[start:stop], np.float32))
        target = folder / engine_name(generation, shard)
        partial = target.with_suffix(".tmp")
        faiss.write_index(index, str(partial))
        partial.replace(target)
    return count


def remove_others(folder: Path, generation: str) -> None:
    """Delete the copies of earlier generations."""
    for old in folder.glob("index-*.sq8"):
        if not old.name.startswith(f"index-{generation}-"):
            old.unlink(missing_ok=True)


def load(
    folder: Path, generation: str, shards: int, rows: int, width: int
) -> Scan | None:
    """The copy of this generation, memory-mapped; None when there is
    none or it does not fit the index."""
    faiss = _faiss()
    if faiss is None or not generation or shards < 1:
        return None
    # Zero-copy: the codes stay in the files (opening takes 0.2 ms, not
    # the 0.5 s a read of a million rows' copy would).
    flag = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP)
    parts = []
    for shard in range(shards):
        path = folder / engine_name(generation, shard)
        try:
            parts.append(faiss.read_index(str(path), flag))
        except RuntimeError:  # missing, cut short: exact search works
            return None
    scan = Scan(parts)
    if scan.ntotal != rows or scan.d != width:
        return None
    return scan


def candidates(
    scan: Scan, query: np.ndarray, wanted: int, rows: np.ndarray | None
) -> np.ndarray:
    """Row positions of the best ``wanted`` rows by the 8-bit scan,
    among ``rows`` if given, ascending."""
    query = np.ascontiguousarray(np.atleast_2d(query), np.float32)
    if rows is None:
        return np.sort(scan.search(query, wanted))
    table = np.zeros(scan.ntotal, bool)
    table[rows] = True
    share = len(rows) / max(1, scan.ntotal)
    if share >= OVERFETCH_SHARE:
        # A large subset: the plain scan (faiss's fast path) over-fetches
        # and the subset's rows are kept, if enough of them came back.
        found = scan.search(query, min(scan.ntotal, int(2 * wanted / share)))
        kept: np.ndarray = found[table[found]]
        if len(kept) >= min(wanted, len(rows)):
            return np.sort(kept)
    return np.sort(scan.search(query, wanted, table))
