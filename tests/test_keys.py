from __future__ import annotations

import pytest

from beets_audiofeatures.keys import (
    NOTE_NAMES,
    SPELLINGS,
    key_from_essentia,
    key_pattern,
    normalize_key,
    parse_key,
    spell_key,
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


def spelt(spelling: str, minor: bool) -> list[str]:
    suffix = "m" if minor else ""
    return [spell_key(name + suffix, spelling) or "" for name in NOTE_NAMES]


def test_the_standard_spelling_is_the_one_of_printed_scores():
    assert SPELLINGS[0] == "standard"
    assert spelt("standard", minor=False) == [
        "C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B",
    ]  # fmt: skip
    assert spelt("standard", minor=True) == [
        "Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am",
        "Bbm", "Bm",
    ]  # fmt: skip


def test_sharps_are_str_and_flats_use_only_flats():
    assert spelt("sharps", minor=True) == [n + "m" for n in NOTE_NAMES]
    assert spelt("flats", minor=False) == [
        "C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B",
    ]  # fmt: skip


def test_every_spelling_reads_back_as_the_same_key():
    for pitch_name in NOTE_NAMES:
        for text in (pitch_name, pitch_name + "m"):
            key = parse_key(text)
            for spelling in SPELLINGS:
                assert parse_key(spell_key(text, spelling) or "") == key


def camelot(pattern: str) -> set[str] | None:
    keys = key_pattern(pattern)
    return None if keys is None else {key.camelot for key in keys}


def test_neighbours_are_the_relative_key_and_a_fifth_either_way():
    assert camelot("8A~") == {"7A", "8A", "9A", "8B"}
    assert camelot("C~") == {"7B", "8B", "9B", "8A"}
    assert camelot("12B~") == {"11B", "12B", "1B", "12A"}


def test_ranges_run_up_the_wheel_and_wrap_after_12():
    assert camelot("9A..10A") == {"9A", "10A"}
    assert camelot("12A..1A") == {"12A", "1A"}
    assert camelot("5B..5B") == {"5B"}
    assert camelot("Am..Em") == {"8A", "9A"}
    assert camelot("1m..3m") == {"8A", "9A", "10A"}  # Open Key


@pytest.mark.parametrize(
    "pattern", ["H", "13B", "Q7", "", "9A..10B", "8A~~", "~", "..", "9A.."]
)
def test_patterns_that_name_no_key(pattern: str):
    assert key_pattern(pattern) is None
