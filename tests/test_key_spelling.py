"""``key_spelling``: how ``beet essentia`` spells the keys it stores, the
key tag it fills and the album keys, on a real library; and a changed
setting re-spells what is stored without analysing the audio again."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
from beets.library import Item
from mediafile import MediaFile

from beetsplug.audiofeatures.settings.essentia import DEFAULTS
from tests.conftest import Audio
from tests.helpers import AudioFeaturesHelper
from tests.test_key_queries import MODIFY_COUNTS

BAD_SPELLING = (
    "audiofeatures.essentia.key_spelling is 'german': use one of standard, "
    "sharps, flats"
)


@pytest.fixture(scope="session")
def b_flat_minor(
    audio: Audio, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The A minor track a semitone up: a key every spelling writes
    otherwise (A#m, Bbm)."""
    target = tmp_path_factory.mktemp("keys") / "b-flat-minor.flac"
    subprocess.run(
        ["sox", "-V1", str(audio.a120_wav), str(target), "pitch", "100"],
        check=True,
    )
    return target


def stored(item: Item, field: str = "essentia_key") -> Any:
    item.load()
    return item.get(field, with_album=False)


class SpellingHelper(AudioFeaturesHelper):
    @pytest.fixture(autouse=True)
    def _keys(
        self, _audio: None, b_flat_minor: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        self.b_flat_minor = b_flat_minor
        self.caplog = caplog

    def spelling(self, value: str) -> None:
        self.config["audiofeatures"]["essentia"]["key_spelling"] = value

    def error(self, *args: str) -> str:
        """The one error line a command ends with."""
        return self.fails(*args, printed=MODIFY_COUNTS)


class TestSpellingOfNewKeys(SpellingHelper):
    def test_the_default_is_the_standard_spelling(self):
        assert DEFAULTS["key_spelling"] == "standard"
        item = self.add_track(self.b_flat_minor, title="bb")
        self.essentia()
        assert stored(item) == "Bbm"
        assert self.run_with_output("ls", "-f", "$essentia_key") == "Bbm\n"

    def test_sharps_spell_keys_as_earlier_versions_did(self):
        self.spelling("sharps")
        item = self.add_track(self.b_flat_minor, title="bb")
        self.essentia()
        assert stored(item) == "A#m"

    def test_a_key_without_accidentals_is_the_same_in_every_spelling(self):
        self.spelling("flats")
        item = self.add_track(self.audio.a120_flac, title="am")
        self.essentia()
        assert stored(item) == "Am"

    def test_the_filled_key_tag_follows_the_setting(self):
        item = self.add_track(self.b_flat_minor, title="bb")
        self.essentia("-w")
        # beets spells its own initial_key with sharps in the database;
        # the tag the plugin writes is spelt as the setting asks
        assert stored(item, "initial_key") == "A#m"
        assert MediaFile(item.path).initial_key == "Bbm"

    def test_the_same_key_again_is_no_change_to_the_core_field(self):
        item = self.add_track(self.b_flat_minor, title="bb")
        self.essentia()
        self.caplog.clear()
        with self.caplog.at_level(logging.INFO):
            self.essentia("-f")
        assert "core fields filled" not in self.caplog.text
        assert stored(item, "initial_key") == "A#m"

    def test_a_users_own_key_is_never_touched(self):
        item = self.add_track(self.b_flat_minor, title="bb", initial_key="Dm")
        self.essentia("-w")
        self.spelling("sharps")
        self.essentia("-w")
        assert stored(item) == "A#m"
        assert stored(item, "initial_key") == "Dm"
        assert MediaFile(item.path).initial_key in (None, "", "Dm")

    def test_a_typed_key_is_spelt_as_the_setting_asks(self):
        item = self.add_track(self.audio.a120_flac, title="am")
        self.run_command("modify", "-y", "essentia_key=3A")
        assert stored(item) == "Bbm"
        self.spelling("sharps")
        self.run_command("modify", "-y", "essentia_key=Bb minor")
        assert stored(item) == "A#m"


class TestChangedSpelling(SpellingHelper):
    def analysed_in_sharps(self) -> Item:
        self.spelling("sharps")
        item = self.add_track(self.b_flat_minor, title="bb")
        self.essentia()
        assert stored(item) == "A#m"
        return item

    def test_pretend_shows_the_respelling_and_changes_nothing(self):
        item = self.analysed_in_sharps()
        self.spelling("flats")
        out = self.run_with_output("essentia", "-p")
        assert "nothing to analyse" in out
        assert "would respell the keys of 1 track as flats" in out
        assert "[respell essentia_key as flats]" in out
        assert stored(item) == "A#m"

    def test_the_next_run_respells_without_analysing(self):
        item = self.analysed_in_sharps()
        analysed = stored(item, "essentia_analyzed")
        self.spelling("standard")
        with self.caplog.at_level(logging.INFO):
            self.essentia()
        assert stored(item) == "Bbm"
        assert stored(item, "essentia_analyzed") == analysed  # not analysed
        assert "keys respelt: 1" in self.caplog.text
        # and then it is current
        out = self.run_with_output("essentia", "-p")
        assert "respell" not in out

    def test_a_respelt_key_is_found_by_every_spelling(self):
        self.analysed_in_sharps()
        self.spelling("flats")
        self.essentia()
        for pattern in ("Bbm", "A#m", "3A", "Bb minor", "8m"):
            assert (
                self.run_with_output(
                    "ls", "-f", "$title", f"essentia_key:{pattern}"
                )
                == "bb\n"
            ), pattern

    def test_the_album_key_is_respelt_by_a_run_without_a(self):
        item = self.add_track(self.b_flat_minor, title="bb")
        album = self.lib.add_album([item])
        self.essentia("-a")
        album.load()
        assert album["essentia_album_key"] == "Bbm"
        self.spelling("sharps")
        out = self.run_with_output("essentia", "-p")
        assert "would respell the keys of 1 album as sharps" in out
        album.load()
        assert album["essentia_album_key"] == "Bbm"  # -p changed nothing
        self.essentia()
        album.load()
        assert album["essentia_album_key"] == "A#m"
        assert stored(item) == "A#m"
        assert (
            self.run_with_output("ls", "-a", "-f", "$essentia_album_key")
            == "A#m\n"
        )

    def test_only_the_albums_of_the_matched_tracks_are_respelt(self):
        item = self.add_track(self.b_flat_minor, title="bb")
        album = self.lib.add_album([item])
        other = self.lib.add_album(
            [self.add_track(self.audio.c90_mp3, title="other")]
        )
        for each in (album, other):
            each["essentia_album_key"] = "Bbm"
            each.store(inherit=False)
        self.spelling("sharps")
        self.essentia("title:bb")
        album.load()
        other.load()
        assert album["essentia_album_key"] == "A#m"
        assert other["essentia_album_key"] == "Bbm"


class TestBadSpelling(SpellingHelper):
    def test_an_invalid_spelling_is_one_line_naming_the_choices(self):
        self.add_track(self.audio.a120_flac, title="am")
        self.spelling("german")
        assert self.error("essentia", "-p") == BAD_SPELLING

    def test_it_stops_a_typed_key_with_the_same_line(self):
        item = self.add_track(self.audio.a120_flac, title="am")
        self.spelling("german")
        assert self.error("modify", "-y", "essentia_key=8A") == BAD_SPELLING
        assert stored(item) is None

    def test_it_never_breaks_a_command_that_does_not_spell(self):
        self.add_track(self.audio.a120_flac, title="am", essentia_key="Am")
        self.spelling("german")
        assert self.run_with_output("ls", "essentia_key:8A~") == (" -  - am\n")
        self.run_command("modify", "-y", "title=renamed")
        assert self.run_with_output("ls", "-f", "$title") == "renamed\n"
