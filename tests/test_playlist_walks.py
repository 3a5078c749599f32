"""The playlist core without a library: the DJ rules, the waypoints of a
path, and the walks on a handful of chosen vectors."""

from __future__ import annotations

import numpy as np
import pytest

from beets_audiofeatures.clap.duplicates import Evidence
from beets_audiofeatures.clap.playlists import (
    Rules,
    TrackFacts,
    bpm_fits,
    harmonic_fits,
    path,
    radio,
    waypoints,
)
from beets_audiofeatures.keys import Key, parse_key


def key(text: str) -> Key:
    parsed = parse_key(text)
    assert parsed is not None
    return parsed


def test_bpm_window_is_relative_to_the_previous_tempo():
    assert bpm_fits(120, 126, 5)
    assert not bpm_fits(120, 127, 5)
    assert not bpm_fits(120, 61, 5)
    assert bpm_fits(120, 61, 5, half_double=True)
    assert bpm_fits(120, 236, 5, half_double=True)
    assert not bpm_fits(120, 180, 5, half_double=True)


@pytest.mark.parametrize(
    ("previous", "fits"),
    [
        ("8A", {"8A", "7A", "9A", "8B"}),
        ("12B", {"12B", "11B", "1B", "12A"}),
        ("1A", {"1A", "12A", "2A", "1B"}),
    ],
)
def test_harmonic_neighbours_on_the_camelot_wheel(previous, fits):
    wheel = [f"{n}{ring}" for n in range(1, 13) for ring in "AB"]
    assert {
        code for code in wheel if harmonic_fits(key(previous), key(code))
    } == fits


def test_harmonic_reads_any_spelling():
    # Am is 8A: C (8B) is its relative key, Em (9A) a fifth up
    assert harmonic_fits(key("Am"), key("C"))
    assert harmonic_fits(key("A minor"), key("9A"))
    assert not harmonic_fits(key("Am"), key("F#"))


def test_waypoints_run_evenly_on_the_sphere():
    a, b = np.eye(3, dtype=np.float32)[:2]
    points = waypoints(a, b, 5)
    np.testing.assert_allclose(points[0], a, atol=1e-6)
    np.testing.assert_allclose(points[-1], b, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(points, axis=1), 1, atol=1e-6)
    steps = [float(points[i] @ points[i + 1]) for i in range(4)]
    np.testing.assert_allclose(steps, np.cos(np.pi / 8), atol=1e-6)
    assert np.array_equal(waypoints(a, a, 3), np.stack([a, a, a]))


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, np.float32)
    normed: np.ndarray = vector / np.linalg.norm(vector)
    return normed


def test_a_ranked_radio_keeps_the_order_and_the_caps():
    vectors = np.stack([unit(1, 0.1, 0), unit(1, 0.3, 0), unit(1, 0.6, 0)])
    scores = vectors @ unit(1, 0, 0)
    facts = [TrackFacts(artist="x"), TrackFacts(artist="x"), TrackFacts()]
    start = unit(1, 0, 0)
    assert radio(vectors, scores, facts, Rules(), 3, start=start, flow=0) == [
        0, 1, 2,
    ]  # fmt: skip
    capped = Rules(max_per_artist=1)
    assert radio(vectors, scores, facts, capped, 3, start=start, flow=0) == [
        0, 2,
    ]  # fmt: skip


def test_a_radio_never_plays_a_version_of_a_seed_or_of_a_pick():
    vectors = np.stack([unit(1, 0.1), unit(1, 0.1), unit(1, 0.5)])
    scores = vectors @ unit(1, 0)
    same = Evidence(length=200)
    facts = [TrackFacts(evidence=same)] * 2 + [
        TrackFacts(evidence=Evidence(length=300))
    ]
    start = unit(1, 0)
    assert radio(vectors, scores, facts, Rules(), 3, start=start) == [0, 2]
    seed = [(unit(1, 0.1), same)]
    assert radio(
        vectors, scores, facts, Rules(), 3, start=start, seeds=seed
    ) == [2]


def test_a_path_keeps_its_ends_and_counts_them_for_the_caps():
    vectors = np.stack([unit(1, 0), unit(0, 1), unit(1, 1), unit(1, 0.9)])
    # the ends are artists a and b; between them one more b, and a c
    facts = [TrackFacts(artist=name) for name in "abbc"]
    points = waypoints(vectors[0], vectors[1], 3)
    assert path(vectors, facts, Rules(), points, first=0, last=1) == [
        (0, 0), (2, 1), (1, 2),
    ]  # fmt: skip
    capped = Rules(max_per_artist=1)
    assert path(vectors, facts, capped, points, first=0, last=1) == [
        (0, 0), (3, 1), (1, 2),
    ]  # fmt: skip
