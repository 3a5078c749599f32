"""The map's projection (``beets_audiofeatures.clap.projection``): UMAP
on real vectors, fitted on a sample with the rest transformed; the
principal components for a handful; the saved file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from beets_audiofeatures.clap.projection import (
    MAP_FILE,
    Projection,
    load_projection,
    project,
    save_projection,
)


def clusters(rng: np.random.Generator, per_cluster: int) -> np.ndarray:
    """Unit vectors around three far-apart centres, 64 wide."""
    centres = rng.standard_normal((3, 64)) * 4
    vectors = np.concatenate(
        [c + rng.standard_normal((per_cluster, 64)) for c in centres]
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def test_umap_keeps_clusters_apart_for_sampled_and_transformed_points():
    pytest.importorskip("umap", reason="the [web] extra is not installed")
    vectors = clusters(np.random.default_rng(0), 100)
    read: list[int] = []

    def reader(positions: np.ndarray) -> np.ndarray:
        read.append(len(positions))
        chosen: np.ndarray = vectors[positions]
        return chosen

    xy = project(len(vectors), reader, sample=150)
    assert xy.shape == (300, 2)
    assert xy.dtype == np.float32
    assert xy.min() >= 0
    assert xy.max() <= 1
    # fitted on 150, the other 150 transformed: no read of everything
    assert read == [150, 150]
    labels = np.repeat(np.arange(3), 100)
    centres = np.stack([xy[labels == k].mean(axis=0) for k in range(3)])
    nearest = np.argmin(
        np.linalg.norm(xy[:, None, :] - centres[None], axis=2), axis=1
    )
    assert (nearest == labels).mean() > 0.95


def test_a_handful_of_vectors_are_laid_out_by_principal_components():
    vectors = clusters(np.random.default_rng(1), 3)
    xy = project(len(vectors), lambda rows: vectors[rows])
    assert xy.shape == (9, 2)
    assert xy.min() == 0
    assert xy.max() == 1
    assert project(1, lambda rows: vectors[rows]).tolist() == [[0.5, 0.5]]
    assert project(0, lambda rows: vectors[rows]).shape == (0, 2)


def test_the_saved_map_knows_the_sources_it_was_drawn_from(tmp_path: Path):
    projection = Projection(
        np.array([3, 7], np.int64),
        np.array(["aaaa", "bbbb"]),
        np.array([[0, 0.5], [1, 1]], np.float32),
    )
    save_projection(tmp_path, projection)
    loaded = load_projection(tmp_path)
    assert loaded is not None
    np.testing.assert_array_equal(loaded.ids, projection.ids)
    np.testing.assert_array_equal(loaded.xy, projection.xy)
    assert loaded.is_current({3: "aaaa", 7: "bbbb"})
    assert not loaded.is_current({3: "aaaa", 7: "cccc"})  # new audio
    assert not loaded.is_current({3: "aaaa"})  # a track gone
    assert not loaded.is_current({3: "aaaa", 7: "bbbb", 9: "dddd"})


def test_a_garbled_map_is_computed_again(tmp_path: Path):
    assert load_projection(tmp_path) is None
    (tmp_path / MAP_FILE).write_bytes(b"PK\x03\x04 not a zip")
    assert load_projection(tmp_path) is None
