"""What a new user meets on the CLAP side: a model or translator setting
that names a path which is not a model, saved playlists of which one
cannot be made, a ``--dump`` that cannot be written and relabelled
zero-shot tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from beetsplug.audiofeatures.library_query import item_id
from tests.helpers import ClapHelper


class TestAModelPathThatIsNotAModel(ClapHelper):
    @pytest.fixture(autouse=True)
    def one_track(self, _clap: None) -> None:
        self.add_track(self.audio.a120_flac, title="a")

    def test_a_missing_folder_is_named_as_a_missing_folder(
        self, tmp_path: Path
    ):
        missing = tmp_path / "models" / "clap"
        self.config["audiofeatures"]["clap"]["model"] = str(missing)
        line = self.fails("clap")
        assert line.startswith(
            "audiofeatures.clap: the CLAP model cannot be loaded: the folder "
            f"{missing} does not exist; point audiofeatures.clap.model at a "
            "folder that holds config.json"
        ), line
        assert "Repo id" not in line

    def test_a_file_is_named_as_a_file(self):
        self.config["audiofeatures"]["clap"]["model"] = str(
            self.audio.a120_flac
        )
        line = self.fails("clap")
        assert line.startswith(
            "audiofeatures.clap: the CLAP model cannot be loaded: "
            f"{self.audio.a120_flac} is a file, not a model folder; point "
        ), line
        assert "JSON" not in line

    def test_a_checkpoints_missing_tokenizer_folder_is_named(
        self, tmp_path: Path
    ):
        settings = self.config["audiofeatures"]["clap"]
        settings["model"] = str(self.assets.checkpoint)
        settings["tokenizer"] = str(tmp_path / "roberta")
        line = self.fails("clap")
        assert line.startswith(
            "audiofeatures.clap: the RoBERTa tokenizer for "
            f"{self.assets.checkpoint.name} cannot be loaded: the folder "
            f"{tmp_path / 'roberta'} does not exist; set "
            "audiofeatures.clap.tokenizer to a folder"
        ), line


class TestATranslatorPathThatIsNotAModel(ClapHelper):
    def test_a_missing_folder_is_named_as_a_missing_folder(
        self, tmp_path: Path
    ):
        self.add_track(self.audio.a120_flac, title="a")
        self.clap()
        missing = tmp_path / "models" / "opus-mt-ru-en"
        self.config["audiofeatures"]["clap"]["translate"] = str(missing)
        line = self.fails("clapquery", "тихое пианино")
        assert (
            f"(translate: {missing}): the model cannot be loaded (the folder "
            f"{missing} does not exist); fix or turn off "
            "audiofeatures.clap.translate"
        ) in line, line


class TestSavedPlaylistsWhoseSeedsLeft(ClapHelper):
    """A saved playlist's seeds can leave the library (``beet rm``) long
    after the playlist was configured."""

    @pytest.fixture(autouse=True)
    def embedded(self, _clap: None, tmp_path: Path) -> None:
        self.library()
        self.clap()
        self.folder = tmp_path / "lists"
        self.folder.mkdir()
        (self.folder / "gone.m3u8").write_text("#EXTM3U\nold.flac\n")
        settings = self.config["audiofeatures"]["clap"]
        settings["playlist_dir"] = str(self.folder)
        settings["playlists"] = {
            "gone": {"seeds": "title:removed-long-ago"},
            "rain": {"prompt": "rain", "limit": 2},
            "gone-too": {"seeds": "title:also-removed"},
        }

    def test_the_other_playlists_are_still_rewritten(self):
        line = self.fails("clap", "--playlists")
        assert line == (
            "2 of 3 saved playlists could not be rewritten (gone, gone-too); "
            "the reasons are above"
        )
        rain = (self.folder / "rain.m3u8").read_text().splitlines()
        assert rain[0] == "#EXTM3U"
        assert rain[2] in {item.path.decode() for item in self.lib.items()}

    def test_each_playlist_that_cannot_be_made_is_named(self):
        self.fails("clap", "--playlists")
        rain = (self.folder / "rain.m3u8").read_text().count("#EXTINF")
        playlist_lines = [
            line
            for line in self.logged()
            if line.startswith(("audiofeatures.clap.playlists", "wrote"))
        ]
        assert playlist_lines == [
            (
                "audiofeatures.clap.playlists.gone: title:removed-long-ago "
                "matches no tracks"
            ),
            f"wrote {self.folder / 'rain.m3u8'} ({rain} tracks)",
            (
                "audiofeatures.clap.playlists.gone-too: title:also-removed "
                "matches no tracks"
            ),
        ]

    def test_a_playlist_that_cannot_be_made_keeps_its_file(self):
        self.fails("clap", "--playlists")
        assert (self.folder / "gone.m3u8").read_text() == "#EXTM3U\nold.flac\n"
        assert sorted(p.name for p in self.folder.iterdir()) == [
            "gone.m3u8",
            "rain.m3u8",
        ]  # and no temporary file


class TestADumpThatCannotBeWritten(ClapHelper):
    @pytest.fixture(autouse=True)
    def one_track(self, _clap: None) -> None:
        self.number = item_id(self.add_track(self.audio.a120_flac, title="a"))

    def test_a_file_given_as_the_folder_is_refused_before_embedding(
        self, tmp_path: Path
    ):
        a_file = tmp_path / "vectors.npy"
        a_file.write_bytes(b"")
        assert self.fails("clap", "--dump", str(a_file)) == (
            f"--dump {a_file} is a file: give a folder (it is made when "
            "missing)"
        )
        assert "clap_uid" not in self.item(self.number)  # nothing embedded

    def test_a_copy_that_cannot_be_written_is_one_line(self, tmp_path: Path):
        dump = tmp_path / "dump"
        dump.mkdir()
        target = dump / f"{Path(self.item(self.number).filepath).name}.npy"
        target.mkdir()  # a folder where the copy goes
        line = self.fails("clap", "--dump", str(dump))
        assert line.startswith(f"--dump cannot write {target}: "), line
        assert line.endswith("; the vectors embedded so far are stored")
        self.vector(self.number)  # the vector itself is kept
        assert [p.name for p in dump.iterdir()] == [target.name]  # no litter


class TestRelabelledTags(ClapHelper):
    @pytest.fixture(autouse=True)
    def tagged(self, _clap: None) -> None:
        self.number = item_id(self.add_track(self.audio.a120_flac, title="a"))
        self.tags = self.config["audiofeatures"]["clap"]["tags"]
        self.tags.set({"mood": ["happy", "sad"], "voice": ["vocals", "solo"]})
        self.clap("--tags")

    def test_a_label_taken_out_of_a_set_leaves_no_probability(self):
        self.tags.set({"mood": ["calm", "angry"], "voice": ["vocals", "solo"]})
        self.clap("--tags")
        fields = {k for k in self.item(self.number) if "mood" in k}
        assert fields == {"clap_mood", "clap_mood_calm", "clap_mood_angry"}

    def test_a_set_taken_out_of_the_settings_is_left_alone(self):
        self.tags.set({"mood": ["happy", "sad"]})
        self.clap("--tags")
        item = self.item(self.number)
        assert {"clap_voice", "clap_voice_vocals", "clap_voice_solo"} <= set(
            item.keys()
        )


class TestDupesOfAQueryThatMatchesNothing(ClapHelper):
    def test_it_says_nothing_matches_rather_than_run_beet_clap(self):
        self.library()
        self.clap()
        self.logged()
        self.run_command("clapdupes", "artist:nobody")
        assert self.logged() == ["no tracks match artist:nobody"]


class TestASavedPlaylistsPlaceTakenByAFolder(ClapHelper):
    def test_the_line_names_the_setting_not_an_option_never_typed(
        self, tmp_path: Path
    ):
        self.library()
        self.clap()
        folder = tmp_path / "lists"
        (folder / "rain.m3u8").mkdir(parents=True)
        settings = self.config["audiofeatures"]["clap"]
        settings["playlist_dir"] = str(folder)
        settings["playlists"] = {"rain": {"prompt": "rain"}}
        assert self.fails("clap", "--playlists") == (
            f"audiofeatures.clap.playlists.rain: its file {folder / 'rain.m3u8'}"
            " is a folder: move it out of the way"
        )


class TestSeedsWithoutVectors(ClapHelper):
    """Seeds (``--like``, a radio's) of which only some are embedded."""

    @pytest.fixture(autouse=True)
    def half_embedded(self, _clap: None) -> None:
        self.library()
        self.clap("title:a-flac")
        self.logged()

    def test_like_says_which_seeds_it_left_out(self):
        self.query("--like", "artist:synth", "-n", "1")
        assert (
            "3 of the 4 tracks matching --like artist:synth have no vector "
            "yet and are left out (beet clap)"
        ) in self.logged()

    def test_a_radio_says_which_seeds_it_left_out(self):
        self.run_command("clapradio", "artist:synth", "-n", "1")
        assert (
            "3 of the 4 tracks matching artist:synth have no vector yet and "
            "are left out (beet clap)"
        ) in self.logged()
