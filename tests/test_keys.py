from __future__ import annotations

import pytest

from beets_audiofeatures.keys import (
    NOTE_NAMES,
    key_from_essentia,
    normalize_key,
    parse_key,
)


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("Am", "Am"),
        ("A minor", "Am"),
        ("a min", "Am"),
        ("C", "C"),
        ("C major", "C"),
        ("Abm", "G#m"),
        ("G# minor", "G#m"),
        ("A♭ minor", "G#m"),
        ("F sharp minor", "F#m"),
        ("Db", "C#"),
        ("Cb", "B"),
        ("8A", "Am"),
        ("8B", "C"),
        ("1A", "G#m"),
        ("12B", "E"),
        ("1m", "Am"),
        ("1d", "C"),
        ("6m", "G#m"),
    ],
)
def test_spellings_normalise_to_beets_form(spelling: str, canonical: str):
    assert normalize_key(spelling) == canonical


@pytest.mark.parametrize("text", ["", "H", "13A", "Am7", "minor", "x"])
def test_non_keys_are_rejected(text: str):
    assert parse_key(text) is None


def test_every_key_round_trips_through_camelot_and_open_key():
    for pitch in range(12):
        for minor in (False, True):
            key = parse_key(NOTE_NAMES[pitch] + ("m" if minor else ""))
            assert key is not None
            assert parse_key(key.camelot) == key
            assert parse_key(key.open_key) == key


def test_essentia_pairs():
    assert key_from_essentia("Eb", "minor") == "D#m"
    assert key_from_essentia("A", "major") == "A"
