"""A 2-D map of a store's vectors, for the web page's scatter plot.

UMAP (``umap-learn``, the ``[web]`` extra) is fitted on a random sample
of at most ``sample`` vectors and the rest are transformed a chunk at a
time, so the vectors are never all in memory at once. A handful of
vectors, too few for UMAP's neighbour graph, are laid out by their two
principal components. The map is saved beside the index as one file
(``map.npz``) holding each point's item id and the source key its vector
was computed from, so a reader can tell a map that no longer matches the
store. No beets here.
"""

from __future__ import annotations

import contextlib
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic_files import atomic_write
from ..errors import SetupError

MAP_FILE = "map.npz"
#: Below this many vectors UMAP's neighbour graph is too small to say
#: anything: the principal components lay them out instead.
FEW = 32
NEIGHBOURS = 15
#: Principal components UMAP works on (``_reducer``).
REDUCED = 64
#: Vectors transformed per UMAP call (a chunk of 512-wide float32 rows
#: is 40 MB).
CHUNK = 20_000
KEY_DTYPE = "<U32"

#: Reads the vectors at the given positions (0 .. count - 1), ascending.
VectorReader = Callable[[np.ndarray], np.ndarray]


class MissingWebExtraError(SetupError):
    section = "web"


@dataclass(frozen=True)
class Projection:
    """Point ``i`` is item ``ids[i]``, drawn at ``xy[i]`` (scaled into
    0..1 on both axes), from the vector of source ``keys[i]``."""

    ids: np.ndarray  # int64
    keys: np.ndarray  # str
    xy: np.ndarray  # float32, len(ids) x 2

    def __len__(self) -> int:
        return len(self.ids)

    def is_current(self, keys: dict[int, str]) -> bool:
        """Whether the map holds exactly these items, each drawn from the
        vector of its current source."""
        if len(keys) != len(self.ids):
            return False
        return all(
            keys.get(number) == key
            for number, key in zip(
                self.ids.tolist(), self.keys.tolist(), strict=True
            )
        )


def project(
    count: int,
    read: VectorReader,
    sample: int = 30_000,
    seed: int = 0,
) -> np.ndarray:
    """2-D coordinates (count x 2, scaled into 0..1) of ``count`` vectors
    that ``read`` returns by position (``seed`` picks the sample)."""
    if count == 0:
        return np.empty((0, 2), np.float32)
    if count < FEW:
        return _scaled(_principal_components(read(np.arange(count))))
    try:
        import umap
    except ImportError as exc:
        raise MissingWebExtraError(
            f"the map needs umap-learn ({exc}): pip install "
            "'beets-audiofeatures[web]'"
        ) from None
    rng = np.random.default_rng(seed)
    fitted = np.sort(rng.choice(count, size=min(sample, count), replace=False))
    # No random_state: a fixed one would run UMAP on one core, twice as
    # long on two. The map is only computed again when the tracks have
    # changed, and then points move anyway. The principal components
    # start the layout: UMAP's spectral start cost about 25 s more at a
    # 50k sample on two cores (benchmarks/web.py).
    model = umap.UMAP(
        n_neighbors=min(NEIGHBOURS, len(fitted) - 1),
        init="pca" if len(fitted) > NEIGHBOURS * 4 else "random",
        n_jobs=-1,
    )
    xy = np.empty((count, 2), np.float32)
    sample_vectors = read(fitted)
    reduce = _reducer(sample_vectors)
    with warnings.catch_warnings():
        # numba's and pynndescent's chatter about threads and jit
        warnings.simplefilter("ignore", UserWarning)
        xy[fitted] = model.fit_transform(reduce(sample_vectors))
        rest = np.setdiff1d(np.arange(count), fitted, assume_unique=True)
        for start in range(0, len(rest), CHUNK):
            part = rest[start : start + CHUNK]
            xy[part] = model.transform(reduce(read(part)))
    return _scaled(xy)


def _reducer(sample: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The sample's first ``REDUCED`` principal components, as a map from
    vectors to their coordinates on them: UMAP's neighbour search and
    layout on 64 numbers instead of 512 take a fraction of the time,
    and the components keep what tells the tracks apart."""
    mean = sample.mean(axis=0)
    if sample.shape[1] <= REDUCED:
        return lambda vectors: np.asarray(vectors, np.float32) - mean
    _, _, axes = np.linalg.svd(sample - mean, full_matrices=False)
    top = np.ascontiguousarray(axes[:REDUCED].T, np.float32)
    return lambda vectors: (np.asarray(vectors, np.float32) - mean) @ top


def _principal_components(vectors: np.ndarray) -> np.ndarray:
    centred = np.asarray(vectors, np.float64)
    centred = centred - centred.mean(axis=0)
    if len(centred) < 2:
        return np.zeros((len(centred), 2))
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    xy: np.ndarray = centred @ axes[:2].T
    if xy.shape[1] < 2:  # one dimension only
        xy = np.column_stack([xy, np.zeros(len(xy))])
    return xy


def _scaled(xy: np.ndarray) -> np.ndarray:
    """Into 0..1 on both axes (a single point sits in the middle)."""
    xy = np.asarray(xy, np.float64)
    low, high = xy.min(axis=0), xy.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    scaled = np.where(high > low, (xy - low) / span, 0.5)
    return scaled.astype(np.float32)


def save_projection(folder: Path, projection: Projection) -> None:
    with atomic_write(folder / MAP_FILE) as handle:
        np.savez(
            handle,
            ids=np.asarray(projection.ids, np.int64),
            keys=np.asarray(projection.keys, KEY_DTYPE),
            xy=np.asarray(projection.xy, np.float32),
        )


def load_projection(folder: Path) -> Projection | None:
    """The saved map; None when there is none, or it cannot be read (it
    is computed again)."""
    path = folder / MAP_FILE
    if not path.exists():
        return None
    with contextlib.suppress(OSError, ValueError, KeyError, zipfile.BadZipFile):
        # Opened here: numpy leaves its own handle open on a garbled file.
        with open(path, "rb") as handle, np.load(handle) as saved:
            ids, keys, xy = saved["ids"], saved["keys"], saved["xy"]
        if (
            ids.ndim == 1
            and keys.shape == ids.shape
            and xy.shape == (len(ids), 2)
        ):
            return Projection(ids.astype(np.int64), keys.astype(str), xy)
    return None
