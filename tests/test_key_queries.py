"""Key queries through ``beet ls`` on a real library: every spelling,
a key with its Camelot neighbours (``8A~``), ranges round the wheel
(``9A..10A``, ``12A..1A``), album keys, and one line for a key query or
a typed key that names no key."""

from __future__ import annotations

import pytest

from tests.helpers import AudioFeaturesHelper

#: title (and Camelot code) -> the stored key, in the spellings a library
#: holds: sharps from earlier versions, flats, standard
KEYS = {
    "7A": "Dm", "8A": "Am", "9A": "Em", "10A": "Bm", "12A": "C#m",
    "1A": "Abm", "2A": "D#m", "3A": "Bbm", "7B": "F", "8B": "C", "9B": "G",
    "11A": "Gbm",
}  # fmt: skip


def accepted(field: str, text: str) -> str:
    return (
        f"{field}: {text!r} names no key; use a note name (Am, F#, Bb "
        "minor), Camelot (8A) or Open Key (1m); a query also takes a key "
        "with its Camelot neighbours (8A~) or a range round one ring of "
        "the wheel (9A..10A, 12A..1A)"
    )


#: What ``beet modify`` prints before a refused value stops it.
MODIFY_COUNTS = ("", "Modifying 1 items.\n", "Modifying 1 albums.\n")


class TestKeyQueries(AudioFeaturesHelper):
    @pytest.fixture(autouse=True)
    def _library(self, _audio: None, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        for title, key in KEYS.items():
            self.add_track(self.audio.c90_mp3, title=title, essentia_key=key)
        # a track without a key, and one whose key was never stored
        self.add_track(self.audio.c90_mp3, title="none")

    def titles(self, *query: str) -> set[str]:
        return set(self.run_with_output("ls", "-f", "$title", *query).split())

    def error(self, *args: str) -> str:
        """The one error line a command ends with; nothing on stdout but
        ``beet modify``'s count."""
        return self.fails(*args, printed=MODIFY_COUNTS)

    def test_a_key_in_any_spelling_finds_it_in_any_stored_spelling(self):
        assert self.titles("essentia_key:A#m") == {"3A"}
        assert self.titles("essentia_key:Bb minor") == {"3A"}
        assert self.titles("essentia_key:Ebm") == {"2A"}
        assert self.titles("essentia_key:G#m") == {"1A"}
        assert self.titles("essentia_key:F#m") == {"11A"}
        assert self.titles("essentia_key:1m") == {"8A"}

    def test_a_plain_key_still_finds_only_that_key(self):
        assert self.titles("essentia_key:Am") == {"8A"}
        assert self.titles("essentia_key:A") == set()  # A major: none here

    def test_a_key_and_its_neighbours(self):
        assert self.titles("essentia_key:8A~") == {"7A", "8A", "9A", "8B"}
        assert self.titles("essentia_key:Am~") == {"7A", "8A", "9A", "8B"}
        assert self.titles("essentia_key:8B~") == {"8A", "7B", "8B", "9B"}

    def test_neighbours_wrap_round_the_wheel(self):
        assert self.titles("essentia_key:1A~") == {"12A", "1A", "2A"}

    def test_a_range_of_camelot_numbers(self):
        assert self.titles("essentia_key:9A..10A") == {"9A", "10A"}
        assert self.titles("essentia_key:Em..Bm") == {"9A", "10A"}
        assert self.titles("essentia_key:7A..9A") == {"7A", "8A", "9A"}

    def test_a_range_wraps_from_12_to_1(self):
        assert self.titles("essentia_key:12A..1A") == {"12A", "1A"}
        assert self.titles("essentia_key:11A..2A") == {"11A", "12A", "1A", "2A"}

    def test_negated_key_queries(self):
        assert "8A" not in self.titles("^essentia_key:8A~")
        assert "7B" in self.titles("^essentia_key:8A~")

    @pytest.mark.parametrize(
        "pattern", ["H", "13B", "0A", "Q7", "8C", "9A..10B", "8A~~", ""]
    )
    def test_a_query_that_names_no_key_is_one_line(self, pattern: str):
        assert self.error("ls", f"essentia_key:{pattern}") == accepted(
            "essentia_key", pattern
        )

    def test_a_typed_value_that_is_no_key_is_refused_with_the_same_line(self):
        assert self.error("modify", "-y", "title:8A", "essentia_key=Q7") == (
            accepted("essentia_key", "Q7")
        )
        assert self.titles("essentia_key:8A") == {"8A"}  # unchanged

    def test_album_keys_take_the_same_queries(self):
        (track,) = self.lib.items("title:9A")
        album = self.lib.add_album([track])
        album["essentia_album_key"] = "Em"
        album.store(inherit=False)
        found = self.run_with_output("ls", "-a", "essentia_album_key:8A~")
        assert found.strip() != ""
        assert self.run_with_output("ls", "-a", "essentia_album_key:8B") == ""
        assert self.error("ls", "-a", "essentia_album_key:H") == accepted(
            "essentia_album_key", "H"
        )
        assert self.error(
            "modify", "-a", "-y", "essentia_album_key=13B"
        ) == accepted("essentia_album_key", "13B")
