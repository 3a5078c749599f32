"""Playlists and duplicates from the CLAP index, against the naive way.

Measures, in one run:

* a radio of ``--length`` (50) tracks over a synthetic index of
  ``--radio-rows`` (500k) random unit vectors (dim 512, float32), with
  the default caps (2 per artist, 1 per album) and the flowing walk: one
  ``search.rank`` for a pool of candidates, then ``playlists.radio`` on
  the pool. The naive way scores the whole index against the previous
  track at every step, so it may also take tracks far from the seeds
  that the pool leaves out (the share of tracks both ways list is
  printed). Median of ``--repeats`` radios from random seeds, after one
  warm-up;
* the candidate search of ``beet clapdupes`` over ``--dupes-rows``
  (100k) tracks of random durations (2-8 minutes) with planted copies
  (another file of the same audio: a vector a little off, the same
  duration within a second): ``duplicates.duplicate_groups``, which
  compares each track with those of about its duration, against all
  pairs. All pairs at 100k take minutes, so they are timed over the
  first ``--naive-rows`` rows against every row and scaled to all rows
  (a product's time grows with its rows); ``--full-naive`` times them
  all.

Only the core is timed: what ``beet clapradio`` adds (the library's
query for current vectors, loading the pool's items) is not.

    python benchmarks/playlists.py [--radio-rows 500000] [--length 50]
                                   [--dupes-rows 100000] [--full-naive]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from beets_audiofeatures.clap.duplicates import (
    DuplicateRules,
    Evidence,
    duplicate_groups,
)
from beets_audiofeatures.clap.index import Index
from beets_audiofeatures.clap.playlists import FLOW, Rules, TrackFacts, radio
from beets_audiofeatures.clap.search import rank
from beets_audiofeatures.vectors import unit
from benchmarks.clap_search import DIM, synthetic_store, unit_rows

#: Tracks per artist and per album in the synthetic library.
PER_ARTIST = 20
PER_ALBUM = 10
POOL_PER_TRACK = 20
POOL_EXTRA = 100
SEEDS = 3
COPIES = 1_000


def facts_of(track_id: int) -> TrackFacts:
    return TrackFacts(
        artist=f"artist {track_id // PER_ARTIST}",
        album=f"album {track_id // PER_ALBUM}",
        evidence=Evidence(length=200 + track_id % 97),
    )


def pooled_radio(
    index: Index, seeds: np.ndarray, length: int, rules: Rules
) -> list[int]:
    """What ``beet clapradio`` does after the library's part: rank a pool
    once, walk it."""
    centre = unit(np.asarray(index.matrix[seeds]).mean(axis=0))
    ranking = rank(
        index, centre[None], exclude=np.sort(seeds),
        limit=length * POOL_PER_TRACK + POOL_EXTRA,
    )  # fmt: skip
    rows = np.array([index.row(int(n)) for n in ranking.ids], np.int64)
    picked = radio(
        np.asarray(index.matrix[rows], np.float32),
        ranking.scores,
        [facts_of(int(n)) for n in ranking.ids],
        rules,
        length,
        start=centre,
    )
    return [int(ranking.ids[p]) for p in picked]


def naive_radio(
    index: Index, seeds: np.ndarray, length: int, rules: Rules
) -> list[int]:
    """The same walk without a pool: every step scores every row."""
    matrix = np.asarray(index.matrix)
    centre = unit(matrix[seeds].mean(axis=0))
    seed_scores = matrix @ centre
    ids = np.asarray(index.ids)
    artists = ids // PER_ARTIST
    albums = ids // PER_ALBUM
    closed = np.zeros(len(ids), bool)
    closed[seeds] = True
    picked: list[int] = []
    artist_count: dict[int, int] = {}
    album_count: dict[int, int] = {}
    previous = centre
    while len(picked) < length:
        scores = (1 - FLOW) * seed_scores + FLOW * (matrix @ previous)
        scores[closed] = -np.inf
        row = int(np.argmax(scores))
        picked.append(int(ids[row]))
        closed[row] = True
        artist, album = int(artists[row]), int(albums[row])
        artist_count[artist] = artist_count.get(artist, 0) + 1
        album_count[album] = album_count.get(album, 0) + 1
        if artist_count[artist] >= rules.max_per_artist:
            closed |= artists == artist
        if album_count[album] >= rules.max_per_album:
            closed |= albums == album
        previous = matrix[row]
    return picked


def median_s(measure: Callable[[], object], repeats: int) -> float:
    measure()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        measure()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_radio(
    root: Path, rows: int, length: int, repeats: int, rng: np.random.Generator
) -> dict[str, float]:
    index = synthetic_store(root, rows, rng).index()
    rules = Rules(max_per_artist=2, max_per_album=1)
    seed_sets = [rng.choice(rows, SEEDS, replace=False) for _ in range(repeats)]
    shared = [
        len(
            set(pooled_radio(index, seeds, length, rules))
            & set(naive_radio(index, seeds, length, rules))
        )
        / length
        for seeds in seed_sets[:2]
    ]
    turn = iter(seed_sets * 3)
    return {
        "shared": statistics.mean(shared),
        "pooled": median_s(
            lambda: pooled_radio(index, next(turn), length, rules), repeats
        ),
        "naive": median_s(
            lambda: naive_radio(index, next(turn), length, rules),
            max(1, repeats // 3),
        ),
    }


def planted_library(
    rows: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[Evidence], set[tuple[int, int]]]:
    """Random tracks of 2-8 minutes, the last ``COPIES`` of them copies
    of earlier ones (a vector a little off, the duration within 1 s)."""
    vectors = unit_rows(rng, rows)
    lengths = rng.uniform(120, 480, rows)
    originals = rng.choice(rows - COPIES, COPIES, replace=False)
    planted = set()
    for offset, original in enumerate(originals.tolist()):
        copy = rows - COPIES + offset
        noisy = vectors[original] + rng.normal(0, 0.003, DIM).astype(np.float32)
        vectors[copy] = unit(noisy)
        lengths[copy] = lengths[original] + rng.uniform(-1, 1)
        planted.add((original, copy))
    evidence = [Evidence(length=float(length)) for length in lengths]
    return vectors, evidence, planted


def all_pairs_seconds(
    vectors: np.ndarray, query_rows: int, threshold: float
) -> float:
    """Seconds to compare ``query_rows`` rows with every row, in blocks."""
    start = time.perf_counter()
    found = 0
    for begin in range(0, query_rows, 2048):
        block = vectors[begin : min(begin + 2048, query_rows)] @ vectors.T
        found += int((block >= threshold).sum())
    return time.perf_counter() - start


def bench_duplicates(
    rows: int, naive_rows: int, full_naive: bool, rng: np.random.Generator
) -> dict[str, float]:
    vectors, evidence, planted = planted_library(rows, rng)
    rules = DuplicateRules()
    start = time.perf_counter()
    groups = duplicate_groups(vectors, evidence, rules)
    blocked = time.perf_counter() - start
    found = {(group[0], group[1]) for group in groups if len(group) == 2}
    sampled = rows if full_naive else min(naive_rows, rows)
    naive = all_pairs_seconds(vectors, sampled, rules.threshold)
    return {
        "blocked": blocked,
        "naive": naive * rows / sampled,
        "naive_rows": float(sampled),
        "planted": float(len(planted)),
        "found": float(len(found & planted)),
        "groups": float(len(groups)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--radio-rows", type=int, default=500_000)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dupes-rows", type=int, default=100_000)
    parser.add_argument("--naive-rows", type=int, default=5_000)
    parser.add_argument("--full-naive", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    root = Path(tempfile.mkdtemp(prefix="af-playlists-"))
    load_before = os.getloadavg()[0]
    try:
        radio_times = bench_radio(
            root, args.radio_rows, args.length, args.repeats, rng
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    dupes = bench_duplicates(
        args.dupes_rows, args.naive_rows, args.full_naive, rng
    )
    print(
        f"radio of {args.length} over {args.radio_rows:,} vectors: "
        f"pool {radio_times['pooled'] * 1000:.0f} ms, every row per step "
        f"{radio_times['naive'] * 1000:.0f} ms "
        f"({radio_times['naive'] / radio_times['pooled']:.1f}x); "
        f"{radio_times['shared']:.0%} of the tracks the same both ways"
    )
    how = (
        "measured"
        if dupes["naive_rows"] == args.dupes_rows
        else f"scaled from {dupes['naive_rows']:,.0f} rows"
    )
    print(
        f"clapdupes over {args.dupes_rows:,} tracks: duration blocks "
        f"{dupes['blocked']:.1f} s, all pairs {dupes['naive']:.1f} s ({how}) "
        f"({dupes['naive'] / dupes['blocked']:.1f}x); found "
        f"{dupes['found']:.0f} of {dupes['planted']:.0f} planted copies, "
        f"{dupes['groups']:.0f} groups in all"
    )
    print(
        f"machine: {os.cpu_count()} cores, load {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after"
    )


if __name__ == "__main__":
    main()
