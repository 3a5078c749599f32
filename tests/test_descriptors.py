from __future__ import annotations

import math

import pytest

from beets_audiofeatures.essentia.descriptors import (
    DESCRIPTORS,
    aggregate_album,
    read_descriptors,
    svm_fields,
)


def test_zero_values_are_kept_and_non_finite_dropped():
    values = read_descriptors(
        {
            "rhythm.bpm": 0.0,
            "rhythm.beats_count": 0.0,
            "lowlevel.loudness_ebu128.integrated": -math.inf,
            "rhythm.danceability": math.nan,
        }
    )
    assert values == {"essentia_bpm": 0.0, "essentia_beats_count": 0}
    assert isinstance(values["essentia_beats_count"], int)


def test_key_is_read_from_key_and_scale():
    values = read_descriptors(
        {"tonal.key.key": "Bb", "tonal.key.scale": "minor",
         "tonal.key.strength": 0.8}
    )  # fmt: skip
    assert values == {"essentia_key": "A#m", "essentia_key_strength": 0.8}


def test_groups_limit_the_fields():
    pool = {"rhythm.bpm": 120.0, "tonal.tuning_frequency": 440.0}
    assert read_descriptors(pool, ["tonal"]) == {"essentia_tuning": 440.0}


def test_svm_outputs_map_to_class_and_probability_fields():
    values = read_descriptors(
        {
            "highlevel.mood_happy.value": "happy",
            "highlevel.mood_happy.probability": 0.9,
            "highlevel.mood_happy.all.happy": 0.9,
            "highlevel.mood_happy.all.not_happy": 0.1,
            "highlevel.danceability.value": "danceable",
            "highlevel.ismir04_rhythm.all.Rumba-American": 0.2,
        }
    )
    assert values == {
        "essentia_mood_happy": "happy",
        "essentia_mood_happy_happy": 0.9,
        "essentia_mood_happy_not_happy": 0.1,
        # the DFA value owns essentia_danceability
        "essentia_danceability_class": "danceable",
        "essentia_ismir04_rhythm_rumba_american": 0.2,
    }
    assert set(values) <= set(svm_fields())


def test_field_names_are_unique_and_prefixed():
    albums = [d.album_field for d in DESCRIPTORS if d.album]
    names = [d.field for d in DESCRIPTORS] + list(svm_fields()) + albums
    assert len(names) == len(set(names))
    assert all(n.startswith("essentia_") for n in names)


def test_album_aggregates():
    tracks = [
        {"essentia_bpm": 100.0, "essentia_key": "Am",
         "essentia_loudness": -10.0},
        {"essentia_bpm": 120.0, "essentia_key": "C",
         "essentia_loudness": -20.0},
        {"essentia_bpm": 130.0, "essentia_key": "Am"},
        {},
    ]  # fmt: skip
    album = aggregate_album(tracks)
    assert album["essentia_album_bpm"] == 120.0  # median
    assert album["essentia_album_key"] == "Am"  # most frequent
    # power mean of -10 and -20 LUFS, not their arithmetic mean
    assert album["essentia_album_loudness"] == pytest.approx(-12.596, abs=1e-3)
    assert "essentia_album_danceability" not in album
    # album names never collide with a track field
    assert not set(album) & {d.field for d in DESCRIPTORS}
