"""Files the plugin writes for people and other programs (playlists,
dumps, the CLAP cache) get the mode any program's new file gets, 0666
less the umask, so that a media server running as another user can read
them; a file that is replaced keeps the mode it had."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from beets_audiofeatures.atomic_files import atomic_write_text
from tests.helpers import AudioFeaturesHelper, ClapHelper


@pytest.fixture
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The process's umask set to the test's parameter, then restored
    (worker processes started meanwhile inherit it)."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(folder: Path) -> dict[str, int]:
    """The mode of every file under ``folder``."""
    return {
        str(path.relative_to(folder)): mode(path)
        for path in folder.rglob("*")
        if path.is_file()
    }


@pytest.mark.parametrize("umask", [0o022, 0o077], indirect=True)
def test_a_new_file_gets_0666_less_the_umask(tmp_path, umask):
    atomic_write_text(tmp_path / "new.m3u", "#EXTM3U\n")
    assert mode(tmp_path / "new.m3u") == 0o666 & ~umask


@pytest.mark.parametrize("umask", [0o077], indirect=True)
def test_a_replaced_file_keeps_its_mode(tmp_path, umask):
    shared = tmp_path / "shared.m3u"
    shared.write_text("old\n")
    shared.chmod(0o644)
    atomic_write_text(shared, "new\n")
    assert shared.read_text() == "new\n"
    assert mode(shared) == 0o644


class TestClapFiles(ClapHelper):
    @pytest.mark.parametrize("umask", [0o022, 0o077], indirect=True)
    def test_the_cache_and_an_m3u_get_the_users_mode(self, tmp_path, umask):
        self.add_track(self.audio.a120_flac, title="a")
        settings = self.config["audiofeatures"]["clap"]
        settings["playlist_dir"] = str(tmp_path / "lists")
        settings["playlists"] = {"rainy": {"prompt": "rain"}}
        self.clap("--dump", str(tmp_path / "dump"), "--playlists")
        playlist = tmp_path / "found.m3u"
        self.query("rain", "--m3u", str(playlist))
        written = {
            **modes(self.cache),
            **modes(tmp_path / "dump"),
            **modes(tmp_path / "lists"),
            "found.m3u": mode(playlist),
        }
        kinds = {Path(name).suffix or Path(name).name for name in written}
        # the store's description, vectors, index, journal and playlists
        assert {".json", ".npy", ".f32", ".m3u", ".m3u8", "journal"} <= kinds
        assert written == dict.fromkeys(written, 0o666 & ~umask)

    @pytest.mark.parametrize("umask", [0o077], indirect=True)
    def test_an_m3u_written_again_keeps_its_mode(self, tmp_path, umask):
        self.add_track(self.audio.a120_flac, title="a")
        self.clap()
        playlist = tmp_path / "found.m3u"
        playlist.write_text("#EXTM3U\n")
        playlist.chmod(0o644)
        self.query("rain", "--m3u", str(playlist))
        assert "a.flac" in playlist.read_text()
        assert mode(playlist) == 0o644


class TestEssentiaDump(AudioFeaturesHelper):
    @pytest.mark.parametrize("umask", [0o022], indirect=True)
    def test_a_dump_gets_the_users_mode(self, tmp_path, umask):
        self.add_track(self.audio.a120_flac, title="done")
        self.essentia("--profile", "rhythm", "--dump", str(tmp_path))
        assert mode(tmp_path / "done.flac.json") == 0o644
