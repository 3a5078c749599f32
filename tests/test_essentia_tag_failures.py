"""``beet essentia -w`` whose tags cannot be written (a read-only or
immutable file, a format beets cannot tag) says so in its summary and
exits 1, as a dump that cannot be written does; the values are stored
all the same (found exploring ``beet essentia`` as a new user: the run
ended with status 0 and a summary that said nothing of it)."""

from __future__ import annotations

import logging

import pytest
from beets.exceptions import UserError
from beets.library import Item

from tests.helpers import AudioFeaturesHelper


class TestTagsThatCannotBeWritten(AudioFeaturesHelper):
    @pytest.fixture(autouse=True)
    def _library(self, _audio: None) -> None:
        self.config["audiofeatures"]["essentia"]["profile"] = "rhythm"
        # Raw ADTS AAC: ffmpeg decodes it, beets cannot write its tags
        # (as it cannot write a file it may not open, even for root).
        self.untaggable: Item = self.add_track(self.audio.raw_aac, title="raw")

    def test_the_run_says_so_and_exits_1(self) -> None:
        # beets logs the file and the reason; a UserError exits 1.
        with (
            self.caplog.at_level(logging.INFO),
            pytest.raises(UserError) as stop,
        ):
            self.essentia("-w")
        assert str(stop.value) == (
            "1 file's tags could not be written (the values are stored); "
            "the reasons are above"
        )
        assert "tags not written: 1" in self.caplog.text
        assert "raw.aac" in self.caplog.text

    def test_the_values_are_stored(self) -> None:
        with pytest.raises(UserError):
            self.essentia("-w")
        self.untaggable.load()
        assert self.untaggable.bpm == pytest.approx(120, abs=1)
        assert self.untaggable.get("essentia_bpm") == pytest.approx(120, abs=1)

    def test_without_w_nothing_is_written_and_all_is_well(self) -> None:
        self.essentia()
        self.untaggable.load()
        assert self.untaggable.bpm == pytest.approx(120, abs=1)
