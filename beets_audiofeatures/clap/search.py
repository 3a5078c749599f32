"""Ranking library items against prompts and seed tracks.

A score is a cosine similarity between unit vectors, so one matrix-vector
product over the index scores every track. With several prompts the
score is their mean; negative prompts subtract their mean. No beets here.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    if exclude is not None and len(exclude):
        base = rows if rows is not None else np.arange(len(index))
        rows = np.setdiff1d(base, exclude, assume_unique=True)
    large = rows is None or len(rows) > GATHER_SHARE * len(index)
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
        rows = engine.candidates(index.engine, query, count, rows)
    if rows is None:
        similarity = index.matrix @ wanted.T
        ids = index.ids
    elif len(rows) > GATHER_SHARE * len(index) and not scanned:
        similarity = (index.matrix @ wanted.T)[rows]
        ids = index.ids[rows]
    else:
        similarity = np.asarray(index.matrix[rows]) @ wanted.T
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
    # Best first; equal scores in index order, whichever path found them.
    order = keep[np.lexsort((keep, -scores[keep]))]
    return Ranking(ids[order], scores[order], positive[order])
