"""Tempo queries through ``beet ls`` on a real library: ``~`` finds a
tempo and its half and double (the track a DJ calls 85 that was stored
at 170), within 4 %; without ``~`` beets' own numeric query."""

from __future__ import annotations

import pytest

from tests.helpers import AudioFeaturesHelper

#: title -> stored tempo
TEMPOS = {
    "t85": 85.0, "t87": 87.9, "t170": 170.2, "t42": 42.4, "t80": 80.0,
    "t95": 95.0, "t120": 120.0, "t125": 125.0, "t62": 62.0, "t250": 250.0,
    "t131": 131.5,
}  # fmt: skip


class TestTempoQueries(AudioFeaturesHelper):
    @pytest.fixture(autouse=True)
    def _library(self, _audio: None, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        for title, bpm in TEMPOS.items():
            self.add_track(self.audio.c90_mp3, title=title, essentia_bpm=bpm)
        self.add_track(self.audio.c90_mp3, title="none")  # never analysed

    def titles(self, *query: str) -> set[str]:
        return set(self.run_with_output("ls", "-f", "$title", *query).split())

    def test_a_tempo_with_its_half_and_double(self):
        # 85 +- 4 % is 81.6..88.4; its double 163.2..176.8, half 40.8..44.2
        assert self.titles("essentia_bpm:85~") == {"t85", "t87", "t170", "t42"}

    def test_a_range_with_its_half_and_double(self):
        assert self.titles("essentia_bpm:120..130~") == {
            "t120",
            "t125",
            "t62",
            "t250",
        }

    def test_an_open_range_with_its_half(self):
        # 200.. with its half is 100..: the double adds nothing
        assert self.titles("essentia_bpm:200..~") == {
            "t120", "t125", "t131", "t170", "t250",
        }  # fmt: skip

    def test_without_the_tilde_beets_own_numeric_query(self):
        assert self.titles("essentia_bpm:120..130") == {"t120", "t125"}
        assert self.titles("essentia_bpm:85") == {"t85"}

    def test_negated(self):
        found = self.titles("^essentia_bpm:85~")
        assert found.isdisjoint({"t85", "t87", "t170", "t42"})
        assert {"t80", "t95", "t120"} <= found

    def test_album_tempos_take_the_same_query(self):
        (track,) = self.lib.items("title:t170")
        album = self.lib.add_album([track])
        album["essentia_album_bpm"] = 170.2
        album.store(inherit=False)
        assert self.run_with_output(
            "ls", "-a", "essentia_album_bpm:85~"
        ).strip()
        assert self.run_with_output("ls", "-a", "essentia_album_bpm:85") == ""

    def test_a_tempo_that_is_no_number_is_one_line(self):
        line = self.fails("ls", "essentia_bpm:fast~")
        assert "fast" in line
        assert "\n" not in line
