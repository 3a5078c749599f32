"""What ``beet essentia`` says when its query matches nothing (a typo):
that nothing matched, not that 0 tracks are already current (found
exploring ``beet essentia`` as a new user)."""

from __future__ import annotations

import logging

import pytest

from tests.helpers import AudioFeaturesHelper


class TestNothingMatches(AudioFeaturesHelper):
    @pytest.fixture(autouse=True)
    def _library(self, _audio: None) -> None:
        self.add_track(self.audio.c90_mp3, title="song")

    def test_a_run_says_the_query_matches_no_track(self) -> None:
        with self.caplog.at_level(logging.INFO):
            self.essentia("title:snog")
        assert (
            "nothing to analyse: no track matches the query 'title:snog'"
            in self.caplog.text
        )
        assert "already current" not in self.caplog.text

    def test_pretend_says_the_query_matches_no_album(self) -> None:
        self.essentia("-p", "-a", "album:nowhere")
        assert self.io.getoutput() == (
            "nothing to analyse: no album matches the query 'album:nowhere'\n"
        )

    def test_a_query_that_matches_still_says_what_is_current(self) -> None:
        self.essentia("-p", "--profile", "rhythm", "title:song")
        assert self.io.getoutput().startswith("would analyse 1 of 1 track")
