"""The scan engine: an 8-bit copy of the index, scanned by faiss.

Scoring every row of a float32 index reads 2 KB per track (2 GB at a
million tracks); faiss's 8-bit scalar quantizer reads a quarter of that.
The scan only picks candidates: ``RERANK`` times as many rows as asked
for are scored again exactly from the float32 matrix, so the results
(scores and order) are those of exact search whenever the true best rows
are among the candidates (recall@50 measured 1.000 at a million rows,
``benchmarks/clap_search.py``).

The copy is derived: written with the base of the index it was built
from (named by the index's generation, so a reader never pairs a matrix
with another one's copy) and rebuilt with it; rows appended to the
index since are scored exactly beside the scan's candidates. Below
``MIN_ROWS`` there is none: numpy scores a small index faster than faiss
opens a file. Without faiss (``faiss-cpu``, in the ``[clap]`` extra) the
numpy path is the only one.

Past ``IVF_FROM_ROWS`` rows (or when asked for) the copy is an inverted
file instead (``IndexIVFScalarQuantizer``): the rows are grouped around
centroids trained on a sample, and a query scans only the ``nprobe``
groups nearest to it. That is no longer exact: its recall is measured
(``search.measured_recall``) and shown by ``beet clap --stats``. No
beets.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
#: The kinds of copy ``audiofeatures.clap.index`` can ask for.
KINDS = ("auto", "exact", "ivf")
#: Where ``auto`` turns from the exact scan to the inverted file: the
#: exact scan's top-50 passes 30 ms near two million rows on two cores.
IVF_FROM_ROWS = 2_000_000
#: Training rows per inverted-file group (faiss asks for 39 or more).
IVF_TRAINING = 40
#: From this share of the index on, a filtered query scans every row
#: (faster than skipping rows by a bitmap) and keeps the subset's.
OVERFETCH_SHARE = 0.25


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        return None
    return faiss


@dataclass(frozen=True)
class ScanOptions:
    """Which copy to build (``KINDS``) and how many groups an inverted
    file scans per query."""

    kind: str = "auto"
    nprobe: int = 32

    def wanted(self, rows: int) -> str:
        """The kind of copy an index of ``rows`` gets ("": none)."""
        if _faiss() is None or rows < MIN_ROWS:
            return ""
        if self.kind == "ivf" or (
            self.kind == "auto" and rows >= IVF_FROM_ROWS
        ):
            return "ivf"
        return "exact"


def engine_name(generation: str, shard: int, kind: str = "exact") -> str:
    suffix = "ivf" if kind == "ivf" else "sq8"
    return f"index-{generation}-{shard}.{suffix}"


def groups(rows: int) -> int:
    """Inverted-file groups for an index of ``rows``."""
    return int(min(65_536, max(64, np.sqrt(rows)), rows))


def shard_count(rows: int) -> int:
    """One shard per core (faiss scans one query on one thread), none
    smaller than ``MIN_ROWS``."""
    return max(1, min(os.cpu_count() or 1, MAX_SHARDS, rows // MIN_ROWS))


class Scan:
    """The 8-bit copy, in shards of consecutive rows scanned at once."""

    def __init__(
        self,
        shards: list[Any],
        kind: str = "exact",
        nprobe: int = 0,
        scale: np.ndarray | None = None,
    ) -> None:
        self.shards = shards
        self.kind = kind
        self.nprobe = nprobe
        #: the codes' steps per unit of each dimension: the query is
        #: divided by it, so that its product with the codes ranks rows
        #: as its product with the vectors they stand for (the codes'
        #: offset adds the same to every row's score)
        self.scale = scale
        for shard in shards:
            if kind == "ivf":
                shard.nprobe = nprobe
        self.starts = np.cumsum([0] + [s.ntotal for s in shards])[:-1]
        self.ntotal = int(sum(s.ntotal for s in shards))
        self.d = int(shards[0].d)

    def search(
        self, query: np.ndarray, wanted: int, table: np.ndarray | None = None
    ) -> np.ndarray:
        """Row positions of the best ``wanted`` rows (among the rows
        ``table`` marks, if given), best first."""
        faiss = _faiss()
        if self.scale is not None:
            query = np.ascontiguousarray(query / self.scale, np.float32)

        def one(shard: int) -> tuple[np.ndarray, np.ndarray]:
            index = self.shards[shard]
            params = None
            if table is not None:
                start = self.starts[shard]
                part = table[start : start + index.ntotal]
                bitmap = np.packbits(part, bitorder="little")
                chosen = faiss.IDSelectorBitmap(
                    index.ntotal, faiss.swig_ptr(bitmap)
                )
                params = (
                    faiss.SearchParametersIVF(sel=chosen, nprobe=self.nprobe)
                    if self.kind == "ivf"
                    else faiss.SearchParameters(sel=chosen)
                )
                scores, found = index.search(query, wanted, params=params)
            else:
                scores, found = index.search(query, wanted)
            keep = found[0] >= 0
            return scores[0][keep], found[0][keep] + self.starts[shard]

        # The shards are the parallelism: faiss's own threads for one
        # query only wait for each other (8 ms for 20k rows on a busy
        # machine, against 1 ms alone). The setting is the calling
        # thread's; the main thread's is given back (builds use it).
        def alone(shard: int) -> tuple[np.ndarray, np.ndarray]:
            faiss.omp_set_num_threads(1)
            return one(shard)

        if len(self.shards) == 1:
            threads = faiss.omp_get_max_threads()
            try:
                parts = [alone(0)]
            finally:
                faiss.omp_set_num_threads(threads)
        else:
            parts = list(
                _threads(len(self.shards)).map(alone, range(len(self.shards)))
            )
        scores = np.concatenate([p[0] for p in parts])
        rows = np.concatenate([p[1] for p in parts])
        best: np.ndarray = rows[np.argsort(-scores, kind="stable")[:wanted]]
        return best


@functools.lru_cache(maxsize=1)
def _threads(count: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(count, thread_name_prefix="clap-scan")


def build(
    folder: Path,
    generation: str,
    matrix: np.ndarray,
    options: ScanOptions | None = None,
) -> tuple[str, int]:
    """Write the copy of ``matrix`` in shards; its kind and how many
    shards ("", 0: the index is too small, or there is no faiss). Its
    files are the generation's: used only once ``index.json`` names it."""
    faiss = _faiss()
    rows = len(matrix)
    kind = (options or ScanOptions()).wanted(rows)
    if not kind or matrix.ndim != 2:
        return "", 0
    width = matrix.shape[1]
    step = 100_000
    if kind == "ivf":
        count = groups(rows)
        trained = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(width), width, count,
            faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT,
        )  # fmt: skip
        sample = min(rows, IVF_TRAINING * count)
        every = np.random.default_rng(0).choice(rows, sample, replace=False)
        trained.train(np.ascontiguousarray(matrix[np.sort(every)], np.float32))
        encode = _as_float32
    else:
        # Each dimension is mapped onto 0..1 first, so that one range
        # serves them all ("uniform"): faiss decodes those codes about
        # 1.5 times as fast as codes of a range per dimension. The
        # mapping goes into the query instead (``Scan.search``).
        trained = faiss.IndexScalarQuantizer(
            width,
            faiss.ScalarQuantizer.QT_8bit_uniform,
            faiss.METRIC_INNER_PRODUCT,
        )
        low_values, scale = _ranges(matrix, step)
        with open(generation_file(folder, generation, "scale"), "wb") as out:
            out.write(scale.tobytes())
            out.flush()
            os.fsync(out.fileno())

        def encode(part: np.ndarray) -> np.ndarray:
            values = np.asarray(part, np.float32)
            return np.ascontiguousarray((values - low_values) * scale)

        trained.train(encode(matrix[:: max(1, rows // step)]))

    count = shard_count(rows)
    for shard in range(count):
        low, high = shard * rows // count, (shard + 1) * rows // count
        index = faiss.clone_index(trained)
        for start in range(low, high, step):
            stop = min(high, start + step)
            index.add(encode(matrix[start:stop]))
        path = folder / engine_name(generation, shard, kind)
        with open(path, "wb") as out:
            # Through Python's file: a full disk is an OSError with its
            # errno (faiss's own writer says it in a RuntimeError's text).
            faiss.write_index(index, faiss.PyCallbackIOWriter(out.write))
            out.flush()
            os.fsync(out.fileno())  # on disk before index.json names it
    return kind, count


def _as_float32(part: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(part, np.float32)


def _ranges(matrix: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Each dimension's least value and the scale that maps its range
    onto 0..1, over every row."""
    low = np.full(matrix.shape[1], np.inf, np.float32)
    high = np.full(matrix.shape[1], -np.inf, np.float32)
    for start in range(0, len(matrix), step):
        part = np.asarray(matrix[start : start + step], np.float32)
        np.minimum(low, part.min(axis=0), out=low)
        np.maximum(high, part.max(axis=0), out=high)
    scale = 1 / np.maximum(high - low, 1e-12)
    return low, scale.astype(np.float32)


def generation_file(folder: Path, generation: str, part: str) -> Path:
    """A file of one generation of the index (``index``)."""
    return folder / f"index-{generation}.{part}"


def load(
    folder: Path,
    generation: str,
    kind: str,
    shards: int,
    shape: tuple[int, int],
    nprobe: int,
) -> Scan | None:
    """The copy of this generation, memory-mapped; None when there is
    none (or no faiss to read it). ``ValueError`` saying why when the
    copy ``index.json`` names is missing, unreadable or does not fit the
    index: searching it would return wrong tracks."""
    faiss = _faiss()
    if faiss is None or not generation or shards < 1 or not kind:
        return None
    rows, width = shape
    # Zero-copy: the codes stay in the files (opening takes 0.2 ms, not
    # the 0.5 s a read of a million rows' copy would).
    flag = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP)
    parts = []
    for shard in range(shards):
        path = folder / engine_name(generation, shard, kind)
        try:
            parts.append(faiss.read_index(str(path), flag))
        except RuntimeError as exc:  # missing, cut short, garbled
            raise ValueError(f"{path.name} cannot be read") from exc
    scale = None
    if kind == "exact":
        path = generation_file(folder, generation, "scale")
        try:
            scale = np.fromfile(path, np.float32)
        except OSError as exc:
            raise ValueError(f"{path.name} cannot be read") from exc
        if len(scale) != width or not (np.isfinite(scale) & (scale > 0)).all():
            raise ValueError(f"{path.name} does not fit the index")
    scan = Scan(parts, kind, nprobe, scale)
    if scan.ntotal != rows or scan.d != width:
        raise ValueError(
            f"the scan copy holds {scan.ntotal} rows of {scan.d} values, "
            f"the index {rows} of {width}"
        )
    return scan


def candidates(
    scan: Scan,
    query: np.ndarray,
    wanted: int,
    rows: np.ndarray | None,
    size: int,
) -> np.ndarray:
    """Row positions of the best ``wanted`` rows by the 8-bit scan,
    among ``rows`` if given, ascending; with every row appended since
    the copy was built (past ``scan.ntotal``, up to ``size``), which the
    caller scores exactly."""
    query = np.ascontiguousarray(np.atleast_2d(query), np.float32)
    if rows is None:
        later = np.arange(scan.ntotal, size)
        return np.concatenate([np.sort(scan.search(query, wanted)), later])
    later = rows[rows >= scan.ntotal]
    rows = rows[rows < scan.ntotal]
    if not len(rows):
        return later
    return np.concatenate([_scanned(scan, query, wanted, rows), later])


def _scanned(
    scan: Scan, query: np.ndarray, wanted: int, rows: np.ndarray
) -> np.ndarray:
    """The scan's best ``wanted`` among ``rows`` (ascending), ascending."""
    share = len(rows) / max(1, scan.ntotal)
    if share >= OVERFETCH_SHARE:
        # A large subset: the plain scan (faiss's fast path) over-fetches
        # and the subset's rows are kept, if enough of them came back
        # (looked up in the sorted rows: no table of every row).
        found = scan.search(query, min(scan.ntotal, int(2 * wanted / share)))
        at = np.minimum(np.searchsorted(rows, found), len(rows) - 1)
        kept: np.ndarray = found[rows[at] == found]
        if len(kept) >= min(wanted, len(rows)):
            return np.sort(kept)
    table = np.zeros(scan.ntotal, bool)
    table[rows] = True
    return np.sort(scan.search(query, wanted, table))
