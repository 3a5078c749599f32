"""Search latency of the CLAP index against loading per-track ``.npy`` files.

Measures, in one run:

* top-50 ``search.rank`` over a synthetic index of random unit vectors
  (dim 512, float32) at each ``--sizes`` row count: a full query, and
  queries filtered to a random 10 % and 60 % subset of the item ids
  (the subset is passed as ids, so resolving them is part of the time),
  and a full query with ``limit=None`` (every row sorted), as
  ``beet clapquery --album`` asks for.
  Median of ``--queries`` random prompts after one warm-up query;
* the baseline a user script without an index pays: load every
  per-track ``.npy`` file written by ``EmbeddingStore.put`` and
  brute-force the dot products, at 10k tracks (and 100k with ``--big``),
  against ``store.index()`` + ``rank`` over the same files (opening the
  index is counted, as every ``beet clapquery`` pays it);
* ``EmbeddingStore.index()`` appending a journal of 1,000 new vectors
  to the largest index (a search right after must find them), a top-50
  query then, the same call with nothing to fold, and the merge into a
  new generation that comes once appended rows pass their share;
* the resident memory of a process that opens the largest index (and
  each ``--memory`` size) and answers 20 queries.

Page caches are warm throughout (files were just written): these are the
times of a second query, not of the first after a reboot.

    python benchmarks/clap_search.py [--sizes 10000 100000 500000 1000000]
                                     [--queries 20] [--big] [--json PATH]
                                     [--memory 10000000]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from beets_audiofeatures.clap import store as store_module
from beets_audiofeatures.clap.engine import ScanOptions, groups
from beets_audiofeatures.clap.index import KEY_DTYPE, Index, write_index
from beets_audiofeatures.clap.search import Ranking, measured_recall, rank
from beets_audiofeatures.clap.store import EmbeddingStore

DIM = 512
LIMIT = 50
CHUNK = 100_000
SUBSET_SHARES = (0.1, 0.6)
TARGET_ROWS = 500_000
TARGET_MS = 100.0
#: Filtered times within this factor of the full query count as equal.
NOISE = 1.05
APPENDED = 1_000
#: Larger synthetic indexes are made on disk.
IN_MEMORY_ROWS = 2_000_000


def unit_rows(rng: np.random.Generator, rows: int) -> np.ndarray:
    """``rows`` random float32 unit vectors of dimension ``DIM``."""
    matrix = rng.standard_normal((rows, DIM), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix


def synthetic_store(
    root: Path,
    rows: int,
    rng: np.random.Generator,
    scan: ScanOptions | None = None,
    clustered: bool = False,
) -> EmbeddingStore:
    """A store whose saved index holds ``rows`` random vectors (ids
    0..rows-1), written directly: no per-track files. Past
    ``IN_MEMORY_ROWS`` the vectors are made in a file on disk (ten
    million take 20 GB). ``clustered``: around 2,000 centres, as real
    embeddings are (an inverted file's recall depends on it)."""
    store = EmbeddingStore(root, f"synthetic-{rows}", scan).open({"rows": rows})
    matrix: np.ndarray
    if rows > IN_MEMORY_ROWS:
        matrix = np.lib.format.open_memmap(
            root / "vectors.npy", "w+", np.float32, (rows, DIM)
        )
    else:
        matrix = np.empty((rows, DIM), np.float32)
    centres = unit_rows(rng, 2_000)
    for start in range(0, rows, CHUNK):
        stop = min(rows, start + CHUNK)
        part = unit_rows(rng, stop - start)
        if clustered:
            part = centres[rng.integers(0, len(centres), len(part))] + part
            part /= np.linalg.norm(part, axis=1, keepdims=True)
        matrix[start:stop] = part
    ids = np.arange(rows, dtype=np.int64)
    keys = np.full(rows, "", KEY_DTYPE)  # vectors of no particular file
    write_index(store.folder, ids, matrix, keys, scan)
    del matrix
    (root / "vectors.npy").unlink(missing_ok=True)
    return store


def median_ms(
    measure: Callable[[np.ndarray], object],
    rng: np.random.Generator,
    repeats: int,
) -> float:
    """Median wall time (ms) of ``measure(prompt)`` over ``repeats``
    random prompts, after one untimed warm-up."""
    measure(unit_rows(rng, 1))
    times = []
    for _ in range(repeats):
        prompt = unit_rows(rng, 1)
        start = time.perf_counter()
        measure(prompt)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def query_times(
    index: Index, rng: np.random.Generator, repeats: int
) -> dict[str, float]:
    """Median top-50 latency: full, and per subset share."""
    times = {
        "full": median_ms(top_k(index, None), rng, repeats),
        "no limit": median_ms(lambda prompt: rank(index, prompt), rng, repeats),
    }
    for share in SUBSET_SHARES:
        subset = rng.choice(
            index.ids, size=int(len(index) * share), replace=False
        )
        times[f"{share:.0%}"] = median_ms(top_k(index, subset), rng, repeats)
    return times


def top_k(
    index: Index, subset: np.ndarray | None
) -> Callable[[np.ndarray], Ranking]:
    """A top-50 query over ``index``, filtered to ``subset`` if given."""

    def query(prompt: np.ndarray) -> Ranking:
        rows = None if subset is None else index.positions(subset)
        return rank(index, prompt, rows=rows, limit=LIMIT)

    return query


def recall_at_limit(
    index: Index, exact: Index, rng: np.random.Generator, repeats: int
) -> float:
    """Share of exact search's top-50 that the index's own path returns,
    over ``repeats`` random prompts (1.0: the same results)."""
    found = []
    for _ in range(repeats):
        prompt = unit_rows(rng, 1)
        mine = set(rank(index, prompt, limit=LIMIT).ids.tolist())
        truth = set(rank(exact, prompt, limit=LIMIT).ids.tolist())
        found.append(len(mine & truth) / LIMIT)
    return float(np.mean(found))


def read_bandwidth(matrix: np.ndarray) -> float:
    """GB/s of one pass reading the float32 matrix (the memory-bandwidth
    limit every full scan is bound by), best of three."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        np.add.reduce(matrix, axis=0)
        best = min(best, time.perf_counter() - start)
    return matrix.nbytes / best / 1e9


def bench_index_sizes(
    root: Path, sizes: list[int], rng: np.random.Generator, repeats: int
) -> dict[int, dict[str, float]]:
    """Each size through the index's own path (the 8-bit scan where the
    index has one) and through numpy alone, in the same run."""
    results = {}
    for rows in sizes:
        print(f"  index of {rows:,} rows …", flush=True)
        store = synthetic_store(root, rows, rng)
        index = store.index()
        exact = dataclasses.replace(index, engine=None)
        times = query_times(index, rng, repeats)
        times |= {
            f"numpy {kind}": ms
            for kind, ms in query_times(exact, rng, repeats).items()
        }
        times["recall"] = recall_at_limit(index, exact, rng, repeats)
        times["scan"] = float(index.engine is not None)
        times["GB/s"] = read_bandwidth(np.asarray(index.matrix))
        results[rows] = times
        shutil.rmtree(store.folder)
    return results


def write_json(
    path: Path,
    results: dict[int, dict[str, float]],
    append: dict[str, float],
    memory: dict[int, dict[str, float]],
    ivf: dict[str, float] | None,
) -> None:
    """The figures to compare from run to run."""
    figures = {
        "rows": {
            str(rows): {
                "full_ms": times["full"],
                "filtered_10_ms": times["10%"],
                "filtered_60_ms": times["60%"],
                "recall_at_50": times["recall"],
                "numpy_full_ms": times["numpy full"],
                "read_gb_per_s": times["GB/s"],
            }
            for rows, times in results.items()
        },
        f"append_{APPENDED}_into_{int(append['rows'])}_s": append["append"],
        f"merge_{int(append['rows'])}_s": append["merge"],
        "resident_mb": {str(rows): mb for rows, mb in memory.items()},
        "ivf": ivf,
    }
    path.write_text(json.dumps(figures, indent=2) + "\n")


def file_store(
    root: Path, tracks: int, rng: np.random.Generator
) -> EmbeddingStore:
    """A store with ``tracks`` per-track vectors written by ``put``."""
    store = EmbeddingStore(root, f"files-{tracks}").open({"tracks": tracks})
    for start in range(0, tracks, CHUNK):
        stop = min(tracks, start + CHUNK)
        for item_id, vector in zip(
            range(start, stop), unit_rows(rng, stop - start), strict=True
        ):
            store.put(item_id, vector)
    return store


def brute_force_files(folder: Path, prompt: np.ndarray) -> np.ndarray:
    """What a user script without an index does: load every ``.npy``,
    stack them, score all, keep the best 50 (ids as file names)."""
    paths = sorted(folder.glob("*/*.npy"))
    matrix = np.stack([np.load(path) for path in paths])
    scores = matrix @ prompt.ravel()
    best = np.argpartition(-scores, LIMIT - 1)[:LIMIT]
    best = best[np.argsort(-scores[best])]
    return np.array([int(paths[row].stem) for row in best])


def bench_baseline(
    root: Path, tracks: int, rng: np.random.Generator, repeats: int
) -> dict[str, float]:
    """Baseline vs index over the same ``tracks`` files written by put."""
    print(f"  writing {tracks:,} vectors with put …", flush=True)
    store = file_store(root, tracks, rng)
    start = time.perf_counter()
    index = store.index()  # no saved index yet: a full scan of the files
    build_ms = (time.perf_counter() - start) * 1000
    prompt = unit_rows(rng, 1)
    expected = rank(index, prompt, limit=LIMIT).ids
    found = brute_force_files(store.folder / "vectors", prompt)
    if set(found.tolist()) != set(expected.tolist()):
        raise SystemExit("the baseline and the index disagree on the top 50")
    baseline = median_ms(
        lambda p: brute_force_files(store.folder / "vectors", p),
        rng,
        max(3, repeats // 5),
    )
    indexed = median_ms(
        lambda p: rank(store.index(), p, limit=LIMIT), rng, repeats
    )
    shutil.rmtree(store.folder)
    return {"baseline": baseline, "index": indexed, "build": build_ms}


def bench_append(
    root: Path, rows: int, rng: np.random.Generator, repeats: int
) -> dict[str, float]:
    """``index()`` folding ``APPENDED`` journalled vectors (new tracks)
    into an index of ``rows``: appended to it, as ``beet clap`` after an
    import leaves them; a search right after must find them. Then the
    merge a later run pays once the appended rows pass their share, and
    ``index()`` with nothing to fold."""
    store = synthetic_store(root, rows, rng)
    store.index()
    added = unit_rows(rng, APPENDED)
    for offset, vector in enumerate(added):
        store.put(rows + offset, vector)
    start = time.perf_counter()
    index = store.index()
    append_s = time.perf_counter() - start
    if len(index) != rows + APPENDED or index.appended != APPENDED:
        raise SystemExit(f"the appended index has {len(index)} rows")
    for offset in (0, APPENDED - 1):
        found = rank(index, added[offset], limit=1).ids.tolist()
        if found != [rows + offset]:
            raise SystemExit("a search right after the append missed it")
    after_ms = median_ms(top_k(index, None), rng, repeats)
    start = time.perf_counter()
    index = store.index()
    clean_ms = (time.perf_counter() - start) * 1000
    # What the merge costs when it comes: a new generation written whole.
    share = store_module.MERGE_SHARE
    store_module.MERGE_SHARE = 0.0
    store.put(rows + APPENDED, added[0])
    start = time.perf_counter()
    merged = store.index()
    merge_s = time.perf_counter() - start
    store_module.MERGE_SHARE = share
    if merged.appended:
        raise SystemExit("the merge did not happen")
    shutil.rmtree(store.folder)
    return {
        "append": append_s,
        "after": after_ms,
        "clean": clean_ms,
        "merge": merge_s,
        "rows": rows,
    }


def resident_memory(
    root: Path, rows: int, rng: np.random.Generator
) -> dict[str, float]:
    """Resident memory (MB) of a process that opens an index of ``rows``
    (the exact scan's, at any size) and answers 20 top-50 queries: file
    pages (the memory-mapped matrix and 8-bit copy, shared with the page
    cache and evictable) and its own (anonymous); and the size on disk
    of the matrix and of the copy every query reads whole."""
    store = synthetic_store(root, rows, rng, ScanOptions(kind="exact"))
    script = f"""
import sys, numpy as np
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
from beets_audiofeatures.clap.search import rank
from beets_audiofeatures.clap.engine import ScanOptions
from beets_audiofeatures.clap.store import EmbeddingStore
scan = ScanOptions(kind="exact")
index = EmbeddingStore({str(store.root)!r}, {store.tag!r}, scan).index()
assert index.scan_kind == "exact"
rng = np.random.default_rng(1)
for _ in range(20):
    prompt = rng.standard_normal({DIM}).astype(np.float32)
    rank(index, prompt / np.linalg.norm(prompt), limit={LIMIT})
fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(*(int(fields[k].split()[0]) for k in ("VmHWM", "RssAnon", "RssFile")))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    peak, anon, file = (int(kb) / 1024 for kb in done.stdout.split())
    sizes = {
        part: sum(p.stat().st_size for p in store.folder.glob(pattern)) / 2**20
        for part, pattern in (("disk", "index-*"), ("codes", "index-*.sq8"))
    }
    shutil.rmtree(store.folder)
    return {"peak": peak, "anon": anon, "file": file, **sizes}


def bench_ivf(
    root: Path, rows: int, rng: np.random.Generator, repeats: int
) -> dict[str, float]:
    """The inverted file over ``rows`` clustered vectors, at a few
    ``nprobe``: top-50 latency and recall against exact search."""
    start = time.perf_counter()
    store = synthetic_store(
        root, rows, rng, ScanOptions(kind="ivf"), clustered=True
    )
    figures = {"build": time.perf_counter() - start, "groups": groups(rows)}
    for nprobe in (8, 32, 128):
        index = EmbeddingStore(
            store.root, store.tag, ScanOptions(kind="ivf", nprobe=nprobe)
        ).index()
        figures[f"{nprobe} ms"] = median_ms(top_k(index, None), rng, repeats)
        figures[f"{nprobe} recall"] = measured_recall(index)
    exact = dataclasses.replace(index, engine=None)
    figures["exact ms"] = median_ms(top_k(exact, None), rng, repeats)
    shutil.rmtree(store.folder)
    return figures


def print_index_table(results: dict[int, dict[str, float]]) -> None:
    kinds = ["full", *(f"{share:.0%}" for share in SUBSET_SHARES), "no limit"]
    header = "".join(f"{kind + ' ms':>12}" for kind in kinds)
    print(f"\ntop-{LIMIT} search.rank, median ms (dim {DIM})")
    print("(10%/60%: subset of that share; no limit: limit=None, full sort;")
    print(" numpy: the same index without its 8-bit scan, in the same run)")
    print(
        f"{'rows':>10}{'path':>7}{header}{'numpy full':>12}{'ratio':>8}"
        f"{'recall':>8}{'GB/s':>7}"
    )
    for rows, times in results.items():
        cells = "".join(f"{times[kind]:>12.2f}" for kind in kinds)
        path = "scan" if times["scan"] else "numpy"
        ratio = times["numpy full"] / times["full"]
        print(
            f"{rows:>10,}{path:>7}{cells}{times['numpy full']:>12.2f}"
            f"{ratio:>7.1f}x{times['recall']:>8.3f}{times['GB/s']:>7.1f}"
        )
    print("(GB/s: one numpy pass reading the float32 matrix, the memory limit)")


def print_baseline_table(results: dict[int, dict[str, float]]) -> None:
    print("\nload every .npy + brute force vs index (top-50, median ms)")
    print(
        f"{'tracks':>10}{'files ms':>12}{'index ms':>12}"
        f"{'ratio':>10}{'build ms':>12}"
    )
    for tracks, times in results.items():
        ratio = times["baseline"] / times["index"]
        print(
            f"{tracks:>10,}{times['baseline']:>12.1f}{times['index']:>12.2f}"
            f"{ratio:>9.0f}x{times['build']:>12.0f}"
        )
    print("(build ms: the first index() over the files, a full scan)")


def print_memory_table(memory: dict[int, dict[str, float]]) -> None:
    print(
        f"\nresident memory, one process answering 20 top-{LIMIT} queries (MB)"
    )
    print(
        f"{'rows':>12}{'on disk':>10}{'codes':>8}{'peak RSS':>10}"
        f"{'file':>8}{'own':>8}"
    )
    for rows, mb in memory.items():
        print(
            f"{rows:>12,}{mb['disk']:>10.0f}{mb['codes']:>8.0f}"
            f"{mb['peak']:>10.0f}{mb['file']:>8.0f}{mb['anon']:>8.0f}"
        )
    print("(codes: the 8-bit copy each query reads whole, to keep in memory;")
    print(" file: pages of the mapped index, shared with the page cache and")
    print(" evictable; own: Python, numpy, faiss, the live-row mask)")


def print_ivf(ivf: dict[str, float], rows: int) -> None:
    print(
        f"\ninverted file over {rows:,} clustered vectors "
        f"({int(ivf['groups']):,} groups, built in {ivf['build']:.0f} s); "
        f"numpy in the same run: {ivf['exact ms']:.1f} ms"
    )
    print(f"{'nprobe':>8}{'top-50 ms':>11}{'recall@50':>11}")
    for nprobe in (8, 32, 128):
        print(
            f"{nprobe:>8}{ivf[f'{nprobe} ms']:>11.2f}"
            f"{ivf[f'{nprobe} recall']:>11.3f}"
        )


def verdict(results: dict[int, dict[str, float]]) -> str:
    target = results.get(TARGET_ROWS)
    fast = (
        f"top-{LIMIT} over {TARGET_ROWS:,} rows: {target['full']:.1f} ms, "
        f"{'under' if target['full'] < TARGET_MS else 'NOT under'} "
        f"{TARGET_MS:.0f} ms"
        if target
        else f"top-{LIMIT} over {TARGET_ROWS:,} rows: not measured (--sizes)"
    )
    slower = [
        f"{kind} at {rows:,} ({times[kind] / times['full']:.1f}x)"
        for rows, times in results.items()
        for kind in ("10%", "60%")
        if times[kind] > NOISE * times["full"]
    ]
    filtered = (
        "filtered queries were not slower than full"
        if not slower
        else "filtered queries SLOWER than full: " + ", ".join(slower)
    )
    return f"{fast}; {filtered}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[10_000, 100_000, 500_000, 1_000_000],
        help="index row counts for the latency table",
    )
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument(
        "--big", action="store_true", help="also the baseline at 100k files"
    )
    parser.add_argument(
        "--memory",
        type=int,
        nargs="*",
        default=[],
        help="also the resident memory of indexes of these sizes",
    )
    parser.add_argument(
        "--ivf",
        action="store_true",
        help="also the inverted file over the largest size, clustered",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    root = Path(tempfile.mkdtemp(prefix="af-clap-search-"))
    load_before = os.getloadavg()[0]
    try:
        print("search latency of synthetic indexes:")
        by_size = bench_index_sizes(root, args.sizes, rng, args.queries)
        print("baseline over per-track files:")
        baseline = {
            tracks: bench_baseline(root, tracks, rng, args.queries)
            for tracks in ([10_000, 100_000] if args.big else [10_000])
        }
        print("appending to the largest index:")
        append = bench_append(root, max(args.sizes), rng, args.queries)
        ivf = (
            bench_ivf(root, max(args.sizes), rng, args.queries)
            if args.ivf
            else None
        )
        print("resident memory:")
        memory = {
            rows: resident_memory(root, rows, rng)
            for rows in sorted({max(args.sizes), *args.memory})
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print_index_table(by_size)
    print_baseline_table(baseline)
    print(
        f"\nindex() appending {APPENDED:,} journalled vectors to "
        f"{int(append['rows']):,}: {append['append']:.3f} s (found by the "
        f"next search); top-{LIMIT} after: {append['after']:.1f} ms; "
        f"index() with nothing to fold: {append['clean']:.2f} ms; "
        f"the merge when it comes: {append['merge']:.1f} s"
    )
    print_memory_table(memory)
    if ivf is not None:
        print_ivf(ivf, max(args.sizes))
    print(
        f"\nmachine: {os.cpu_count()} cores, load {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after"
    )
    print(verdict(by_size))
    if args.json:
        write_json(args.json, by_size, append, memory, ivf)


if __name__ == "__main__":
    main()
