"""Ranking library items against prompts and seed tracks.

A score is a cosine similarity between unit vectors, so one matrix-vector
product over the index scores every track. With several prompts the
score is their mean; negative prompts subtract their mean. No beets here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import engine
from .index import Index

#: Below this share of the index a subset's rows are copied out and
#: scored alone; above it, scoring every row (one pass at memory speed)
#: and picking is faster: the copy costs about as much as the product.
GATHER_SHARE = 0.03


@dataclass(frozen=True)
class Ranking:
    ids: np.ndarray  # best first
    scores: np.ndarray  # combined score of each id
    per_prompt: np.ndarray  # len(ids) x number of positive targets


def rank(
    index: Index,
    targets: np.ndarray,
    *,
    avoid: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
    limit: int | None = None,
    min_score: float | None = None,
) -> Ranking:
    """Rank the index's ``rows`` (default: all; see ``Index.positions``)
    minus the ``exclude`` rows by the mean similarity to ``targets``
    (P x dim) minus the mean similarity to ``avoid``; keep the best
    ``limit``."""
    targets = np.atleast_2d(np.asarray(targets, np.float32))
    wanted = (
        np.concatenate([targets, np.atleast_2d(avoid)])
        if avoid is not None and len(avoid)
        else targets
    )
    if rows is None:
        rows = index.live_rows()  # None: every row holds a vector
    if exclude is not None and len(exclude):
        base = rows if rows is not None else np.arange(index.size)
        rows = np.setdiff1d(base, exclude, assume_unique=True)
    large = rows is None or len(rows) > GATHER_SHARE * index.size
    scanned = limit is not None and index.engine is not None and large
    if scanned:
        # The scan picks candidates by the combined score (a mean of
        # dot products is the dot product with the mean); they are
        # scored exactly below, as a small subset.
        query = targets.mean(axis=0)
        if len(wanted) > len(targets):
            query = query - wanted[len(targets) :].mean(axis=0)
        assert limit is not None
        count = max(limit * engine.RERANK, engine.MIN_CANDIDATES)
        rows = engine.candidates(index.engine, query, count, rows, index.size)
    if rows is None:
        similarity = index.matrix @ wanted.T
        ids = index.ids
    elif len(rows) > GATHER_SHARE * index.size and not scanned:
        similarity = (index.matrix @ wanted.T)[rows]
        ids = index.ids[rows]
    else:
        # A few rows: numpy's own loop, not BLAS, whose threads would
        # spin on both cores after the product and slow the next scan
        # (a query after 1,000 appended rows took 40 ms instead of 24).
        vectors = np.asarray(index.matrix[rows])
        similarity = np.einsum("ij,kj->ik", vectors, wanted)
        ids = index.ids[rows]
    positive = similarity[:, : len(targets)]
    scores = positive.mean(axis=1)
    if len(wanted) > len(targets):
        scores = scores - similarity[:, len(targets) :].mean(axis=1)
    keep = np.arange(len(scores))
    if min_score is not None:
        keep = keep[scores[keep] >= min_score]
    if limit is not None and limit < len(keep):
        part = np.argpartition(-scores[keep], limit - 1)[:limit]
        keep = keep[part]
    # Best first; equal scores by item id, whichever path found them.
    order = keep[np.lexsort((ids[keep], -scores[keep]))]
    return Ranking(ids[order], scores[order], positive[order])


def measured_recall(index: Index, queries: int = 20, limit: int = 50) -> float:
    """Share of exact search's best ``limit`` that the index's own path
    finds, over ``queries`` of its vectors taken as seeds (1.0 for the
    exact scan, by construction; below it for an inverted file)."""
    rows = index.live_rows()
    pool = np.arange(index.size) if rows is None else rows
    if not len(pool):
        return 1.0
    exact = replace(index, engine=None)
    chosen = np.random.default_rng(0).choice(pool, min(queries, len(pool)))
    found = []
    for row in chosen.tolist():
        seed = np.asarray(index.matrix[row])
        mine = set(rank(index, seed, limit=limit).ids.tolist())
        truth = rank(exact, seed, limit=limit).ids.tolist()
        found.append(len(mine.intersection(truth)) / max(1, len(truth)))
    return float(np.mean(found))
