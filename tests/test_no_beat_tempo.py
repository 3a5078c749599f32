"""A track too short for a beat (half a second: a jingle, a cut-off
sample) stores a tempo of 0, which is no tempo: it fills no core
``bpm`` and overwrites none, and ``-p`` promises no refill that a run
never makes (found exploring ``beet essentia`` as a new user)."""

from __future__ import annotations

from pathlib import Path

import pytest
from beets.library import Item

from tests import synth
from tests.helpers import AudioFeaturesHelper


class TestNoBeatFound(AudioFeaturesHelper):
    @pytest.fixture(autouse=True)
    def _jingle(self, tmp_path: Path) -> None:
        source = synth.make_wav(tmp_path / "jingle.wav", seconds=0.5)
        self.jingle: Item = self.add_track(source, title="jingle")
        self.config["audiofeatures"]["essentia"]["profile"] = "rhythm"

    def test_its_stored_tempo_is_zero(self) -> None:
        self.essentia()
        self.jingle.load()
        assert self.jingle.get("essentia_bpm") == 0

    def test_pretend_then_promises_no_refill(self) -> None:
        self.essentia()
        self.io.getoutput()
        self.essentia("-p")
        out = self.io.getoutput()
        assert "refill" not in out
        assert out.startswith("nothing to analyse: 1 matching track")

    def test_force_keeps_the_users_tempo(self) -> None:
        self.jingle.bpm = 77
        self.jingle.store()
        self.essentia("-f")
        self.jingle.load()
        assert self.jingle.bpm == 77


class TestAlbumWithJingles(AudioFeaturesHelper):
    def test_the_album_tempo_is_its_songs_not_zero(
        self, tmp_path: Path
    ) -> None:
        jingle = synth.make_wav(tmp_path / "jingle.wav", seconds=0.5)
        tracks = [
            self.add_track(jingle, title="intro"),
            self.add_track(jingle, title="outro"),
            self.add_track(self.audio.a120_flac, title="song"),
        ]
        album = self.lib.add_album(tracks)
        self.config["audiofeatures"]["essentia"]["profile"] = "rhythm"
        self.essentia("-a")
        album.load()
        assert album["essentia_album_bpm"] == pytest.approx(120, abs=1)
        assert [t.title for t in self.lib.items("essentia_bpm:0")] == [
            "intro",
            "outro",
        ]  # the tracks keep their own 0
