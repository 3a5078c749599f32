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

from pathlib import Path
from typing import Any

import numpy as np

#: Smallest index that gets an 8-bit copy.
MIN_ROWS = 20_000
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


def engine_name(generation: str) -> str:
    return f"index-{generation}.sq8"


def build(folder: Path, generation: str, matrix: np.ndarray) -> Path | None:
    """Write the 8-bit copy of ``matrix`` (None: too small, or no faiss).
    Written under a temporary name and renamed, like every store file."""
    faiss = _faiss()
    rows = len(matrix)
    if faiss is None or rows < MIN_ROWS or matrix.ndim != 2:
        return None
    engine = faiss.IndexScalarQuantizer(
        matrix.shape[1],
        faiss.ScalarQuantizer.QT_8bit,
        faiss.METRIC_INNER_PRODUCT,
    )
    step = 100_000
    sample = np.ascontiguousarray(matrix[:: max(1, rows // step)], np.float32)
    engine.train(sample)  # the range of each dimension
    for start in range(0, rows, step):
        engine.add(
            np.ascontiguousarray(matrix[start : start + step], np.float32)
        )
    target = folder / engine_name(generation)
    partial = target.with_suffix(".tmp")
    faiss.write_index(engine, str(partial))
    partial.replace(target)
    return target


def remove_others(folder: Path, generation: str) -> None:
    """Delete the copies of earlier generations."""
    keep = engine_name(generation)
    for old in folder.glob("index-*.sq8"):
        if old.name != keep:
            old.unlink(missing_ok=True)


def load(folder: Path, generation: str, rows: int, width: int) -> Any:
    """The copy of this generation, memory-mapped; None when there is
    none or it does not fit the index."""
    faiss = _faiss()
    path = folder / engine_name(generation)
    if faiss is None or not generation or not path.is_file():
        return None
    try:
        # Zero-copy: the codes stay in the file (opening takes 0.2 ms,
        # not the 0.5 s a read of a million rows' copy would).
        flag = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP)
        engine = faiss.read_index(str(path), flag)
    except RuntimeError:  # cut short or garbled: exact search still works
        return None
    if engine.ntotal != rows or engine.d != width:
        return None
    return engine


def candidates(
    engine: Any, query: np.ndarray, wanted: int, rows: np.ndarray | None
) -> np.ndarray:
    """Row positions of the best ``wanted`` rows by the 8-bit scan,
    among ``rows`` if given (a bitmap the scan skips the others by),
    ascending."""
    faiss = _faiss()
    query = np.ascontiguousarray(np.atleast_2d(query), np.float32)
    if rows is None:
        return _best(engine, query, wanted)
    table = np.zeros(engine.ntotal, bool)
    table[rows] = True
    share = len(rows) / max(1, engine.ntotal)
    if share >= OVERFETCH_SHARE:
        # A large subset: the plain scan (faiss's fast path) over-fetches
        # and the subset's rows are kept, if enough of them came back.
        found = _best(
            engine, query, min(engine.ntotal, int(2 * wanted / share))
        )
        kept: np.ndarray = found[table[found]]
        if len(kept) >= min(wanted, len(rows)):
            return kept
    bitmap = np.packbits(table, bitorder="little")
    params = faiss.SearchParameters(
        sel=faiss.IDSelectorBitmap(engine.ntotal, faiss.swig_ptr(bitmap))
    )
    return _best(engine, query, wanted, params)


def _best(
    engine: Any, query: np.ndarray, wanted: int, params: Any = None
) -> np.ndarray:
    """The scan's best ``wanted`` row positions, ascending."""
    _scores, found = engine.search(query, wanted, params=params)
    picked = found[0]
    return np.sort(picked[picked >= 0])
