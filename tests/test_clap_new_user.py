"""What a new user meets on the CLAP side: a model setting that names a
path which is not a model, and saved playlists of which one cannot be
made."""

from __future__ import annotations

from pathlib import Path

import pytest

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
            f"audiofeatures.clap: the CLAP model folder {missing} does not "
            "exist: point audiofeatures.clap.model at a folder that holds "
            "config.json"
        ), line
        assert "Repo id" not in line

    def test_a_file_is_named_as_a_file(self):
        self.config["audiofeatures"]["clap"]["model"] = str(
            self.audio.a120_flac
        )
        line = self.fails("clap")
        assert line.startswith(
            f"audiofeatures.clap: CLAP model {self.audio.a120_flac} is a "
            "file, not a model folder"
        ), line
        assert "JSON" not in line
