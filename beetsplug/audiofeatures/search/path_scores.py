"""The candidates of a path (``beet clappath``, the API's
``findSonicPath``) and their similarity to its waypoints, from one
product over the index for the two ends instead of one for each
waypoint."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from beets_audiofeatures.clap.index import Index
from beets_audiofeatures.clap.search import GATHER_SHARE, Ranking


def similarities(
    index: Index, rows: np.ndarray, targets: np.ndarray
) -> np.ndarray:
    """Each of these rows' similarity to each target (rows x targets):
    the whole index's product when the rows are much of it (one pass at
    memory speed), else theirs alone."""
    if len(rows) > GATHER_SHARE * index.size:
        every: np.ndarray = np.asarray(index.matrix @ targets.T)[rows]
        return every
    # numpy's own loop for a few rows, as ``rank`` does
    found: np.ndarray = np.einsum(
        "ij,kj->ik", np.asarray(index.matrix[rows], np.float32), targets
    )
    return found


@dataclass(frozen=True)
class WaypointScores:
    """The candidates of a path and their similarity to its waypoints
    between the ends, estimated from the ends': each waypoint lies on the
    great circle through the two ends, so a candidate's similarity to it
    is a weighted sum of its similarities to them (one product over the
    index for two vectors, not one for each of 25 waypoints). The nearest
    few of each waypoint are then scored exactly."""

    index: Index
    rows: np.ndarray  # the candidates, ends excluded
    points: np.ndarray  # the waypoints between the ends, W x dim
    estimate: np.ndarray  # W x candidates

    @classmethod
    def of(
        cls, index: Index, rows: np.ndarray, ends: np.ndarray,
        points: np.ndarray,
    ) -> WaypointScores:  # fmt: skip
        if not len(points):  # a path of its two ends: none between
            return cls(index, rows[:0], points, np.empty((0, 0), np.float32))
        weights = np.linalg.lstsq(ends.T, points.T, rcond=None)[0]
        estimate = (similarities(index, rows, ends) @ weights).T
        return cls(
            index, rows, points, np.ascontiguousarray(estimate, np.float32)
        )

    def nearest(self, size: int) -> Ranking:
        """The ``size`` candidates nearest each waypoint, scored against
        every waypoint exactly, best mean first (equal ones by id)."""
        rows = self.rows
        if not len(rows):
            return Ranking(
                np.empty(0, np.int64), np.empty(0, np.float32),
                np.empty((0, len(self.points)), np.float32),
            )  # fmt: skip
        # Twice as many by the estimate (its rounding never moves a row
        # that far), then the exact best of those.
        if 2 * size < len(rows):
            best = np.argpartition(-self.estimate, 2 * size - 1, axis=1)
            rows = rows[np.unique(best[:, : 2 * size])]
        exact = similarities(self.index, rows, self.points)
        if size < len(rows):
            keep = np.unique(np.argpartition(-exact, size - 1, axis=0)[:size])
            rows, exact = rows[keep], exact[keep]
        ids = self.index.ids[rows]
        scores = exact.mean(axis=1)
        order = np.lexsort((ids, -scores))
        return Ranking(ids[order], scores[order], exact[order])
