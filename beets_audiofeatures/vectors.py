"""Unit vectors, the one form embeddings are stored, averaged and
compared in (a dot product is then their cosine similarity)."""

from __future__ import annotations

import numpy as np

#: Below this norm a vector is treated as zero (no division by it).
TINY = 1e-12


def unit(vector: np.ndarray) -> np.ndarray:
    """``vector`` scaled to length 1, as float32."""
    vector = np.asarray(vector, np.float32)
    scaled: np.ndarray = vector / max(float(np.linalg.norm(vector)), TINY)
    return scaled.astype(np.float32)


def unit_rows(rows: np.ndarray) -> np.ndarray:
    """Each row of ``rows`` scaled to length 1, as float32."""
    rows = np.asarray(rows, np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True).clip(TINY)
    scaled: np.ndarray = rows / norms
    return scaled.astype(np.float32)
