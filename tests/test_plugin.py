"""``beet essentia`` on a real on-disk library with real Essentia."""

from __future__ import annotations

import logging
import os
from typing import ClassVar

import pytest
from beets.exceptions import UserError
from beets.test.helper import ImportHelper
from mediafile import MediaFile

from tests.conftest import Audio
from tests.helpers import AudioFeaturesHelper


class TestAnalysis(AudioFeaturesHelper):
    def test_stores_typed_values_for_matching_tracks(self):
        item = self.add_track(self.audio.a120_flac, title="one")
        other = self.add_track(self.audio.c90_mp3, title="two")

        self.essentia("title:one")

        item.load()
        assert item["essentia_bpm"] == pytest.approx(120, abs=1)
        assert isinstance(item["essentia_bpm"], float)
        assert isinstance(item["essentia_beats_count"], int)
        assert item["essentia_key"] == "Am"
        assert item["essentia_profile"] == "stored"
        assert item["essentia_version"].startswith("2.1")
        other.load()
        assert "essentia_bpm" not in other

    def test_range_key_and_format_queries(self):
        self.add_track(self.audio.a120_flac, title="fast")
        self.add_track(self.audio.c90_mp3, title="slow")
        self.essentia()

        def titles(*query: str) -> list[str]:
            return sorted(i.title for i in self.lib.items(list(query)))

        assert titles("essentia_bpm:110..130") == ["fast"]
        assert titles("essentia_bpm:..100") == ["slow"]
        assert titles("essentia_key:Am") == ["fast"]
        assert titles("essentia_key:8A") == ["fast"]  # Camelot
        assert titles("essentia_key:1d") == ["slow"]  # Open Key, C major
        assert titles("essentia_key:A") == []  # A major is not A minor
        assert titles("essentia_analyzed:2000..") == ["fast", "slow"]
        out = self.run_with_output(
            "ls", "-f", "$title $essentia_bpm %camelot{$essentia_key}",
            "title:slow",
        )  # fmt: skip
        title, bpm, camelot = out.split()
        assert (title, camelot) == ("slow", "8B")
        assert len(bpm.split(".")[1]) == 2  # two decimals

    def test_skips_analysed_tracks_unless_forced(self, caplog):
        item = self.add_track(self.audio.a120_flac)
        self.essentia()
        item.load()
        first = item["essentia_analyzed"]

        with caplog.at_level(logging.INFO):
            self.essentia()
        assert "nothing to analyse: 1 track already current" in caplog.text
        item.load()
        assert item["essentia_analyzed"] == first

        self.essentia("--force")
        item.load()
        assert item["essentia_analyzed"] > first

    def test_a_new_profile_or_version_means_not_analysed(self):
        item = self.add_track(self.audio.a120_flac)
        self.essentia("--profile", "rhythm")
        item.load()
        assert item["essentia_profile"] == "rhythm"
        assert "essentia_key" not in item

        self.essentia("--profile", "tonal")
        item.load()
        assert item["essentia_key"] == "Am"

        # as 0.1.0 left it: one profile and version per track, no methods
        for group in ("rhythm", "tonal", "lowlevel"):
            if f"essentia_{group}_method" in item:
                del item[f"essentia_{group}_method"]
        item["essentia_version"] = "2.1b5"
        item["essentia_profile"] = "tonal"
        item.store()
        self.essentia("--profile", "tonal")
        item.load()
        assert item["essentia_version"] != "2.1b5"
        assert item["essentia_tonal_method"].endswith(item["essentia_version"])

    def test_pretend_lists_the_plan_and_changes_nothing(self, caplog):
        item = self.add_track(self.audio.a120_flac, title="dry")
        out = self.run_with_output("essentia", "-p", "--profile", "rhythm")
        assert "would analyse 1 of 1 track with profile rhythm" in out
        assert "dry" in out
        assert "[rhythm: essentia_bpm" in out
        assert "essentia_key" not in out  # not in the rhythm profile
        item.load()
        assert "essentia_analyzed" not in item

        self.essentia("--profile", "rhythm")
        out = self.run_with_output("essentia", "-p", "--profile", "rhythm")
        assert out.strip() == (
            "nothing to analyse: 1 matching track, all current for "
            "profile rhythm"
        )

    def test_fills_empty_core_fields_and_writes_tags(self):
        self.config["audiofeatures"]["essentia"]["fill_core_fields"] = True
        item = self.add_track(self.audio.a120_flac, bpm=0, initial_key=None)
        item.write()
        kept = self.add_track(self.audio.c90_mp3, bpm=95)

        self.essentia("--write")

        item.load()
        assert item.bpm == 120
        assert item.initial_key == "Am"
        tags = MediaFile(item.path)
        assert (tags.bpm, tags.initial_key) == (120, "Am")
        kept.load()
        assert kept.bpm == 95  # not empty: left alone without --force

    def test_dump_mirrors_the_library_tree(self, tmp_path):
        item = self.add_track(self.audio.a120_flac, title="deep")
        (self.lib_path / "Artist").mkdir()
        moved = self.lib_path / "Artist" / "deep.flac"
        os.rename(item.path, moved)
        item.path = bytes(moved)
        item.store()

        self.essentia("--dump", str(tmp_path / "json"), "--profile", "rhythm")
        dumped = tmp_path / "json" / "Artist" / "deep.flac.json"
        assert dumped.exists()


class TestBadInput(AudioFeaturesHelper):
    def test_a_profile_essentia_rejects_is_a_user_error(self, tmp_path):
        self.add_track(self.audio.a120_flac)
        profile = tmp_path / "bad.yaml"
        profile.write_text("rhythm: {method: nonexistent_method}\n")
        with pytest.raises(UserError, match="nonexistent_method"):
            self.essentia("--profile", str(profile))


class TestImport(ImportHelper, AudioFeaturesHelper):
    preload_plugin: ClassVar[bool] = False

    @pytest.fixture(autouse=True)
    def _resource(self, audio: Audio) -> None:
        self.resource_path = audio.a120_mp3

    def test_auto_analyses_on_import(self):
        self.config["audiofeatures"]["essentia"]["auto"] = True
        self.config["audiofeatures"]["essentia"]["profile"] = "rhythm"
        self.load_plugins()
        self.prepare_album_for_import(2)

        self.setup_importer(autotag=False).run()

        items = list(self.lib.items())
        assert len(items) == 2
        for item in items:
            assert item["essentia_bpm"] == pytest.approx(120, abs=1)

    def test_no_analysis_on_import_by_default(self):
        self.load_plugins()
        self.prepare_album_for_import(1)
        self.setup_importer(autotag=False).run()
        assert "essentia_bpm" not in next(iter(self.lib.items()))
