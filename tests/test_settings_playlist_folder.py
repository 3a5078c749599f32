"""One playlist folder: the page's "save" goes where ``beet clap
--playlists`` writes unless ``web.playlist_dir`` names its own folder;
and the page reads the model's identity once, not on every request.
Through the real page (Flask's test client of the app ``beet clapweb``
serves), on a real library with the tiny real CLAP model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from beetsplug.audiofeatures.settings import model_identity

pytest.importorskip("flask", reason="the [web] extra is not installed")

from tests.test_web import WebHelper


class TestThePagesPlaylistFolder(WebHelper):
    @pytest.fixture(autouse=True)
    def _folders(self, _web: None, tmp_path: Path) -> None:
        self.web = self.config["audiofeatures"]["web"]
        self.clap_settings = self.config["audiofeatures"]["clap"]
        self.web["playlist_dir"] = None
        self.clap_lists = tmp_path / "clap-lists"
        self.clap_lists.mkdir()

    def save(self) -> Any:
        ids = self.embedded()
        client = self.client()
        csrf = self.csrf(client.get("/").get_data(as_text=True))
        return client.post(
            "/api/playlists",
            data={"name": "evening", "ids": str(ids["a-mp3"])},
            headers={"X-CSRF-Token": csrf},
        )

    def test_without_its_own_folder_the_page_saves_in_clap_playlist_dir(self):
        self.clap_settings["playlist_dir"] = str(self.clap_lists)
        answer = self.save()
        assert answer.status_code == 201, answer.get_json()
        assert os.listdir(self.clap_lists) == ["evening.m3u8"]

    def test_web_playlist_dir_still_comes_first(self):
        self.clap_settings["playlist_dir"] = str(self.clap_lists)
        self.web["playlist_dir"] = str(self.playlists)
        assert self.save().status_code == 201
        assert os.listdir(self.playlists) == ["evening.m3u8"]
        assert os.listdir(self.clap_lists) == []

    def test_smartplaylists_folder_is_still_the_last_fallback(
        self, tmp_path: Path
    ):
        smart = tmp_path / "smart"
        smart.mkdir()
        self.config["smartplaylist"]["playlist_dir"] = str(smart)
        assert self.save().status_code == 201
        assert os.listdir(smart) == ["evening.m3u8"]


class TestThePagesModelIdentity(WebHelper):
    def test_requests_after_the_first_do_not_compute_it_again(self):
        self.embedded()
        client = self.client()
        assert client.get("/api/search?q=jazz").status_code == 200
        before = model_identity._identity.cache_info()
        for prompt in ("rain", "piano", "jazz"):
            assert client.get(f"/api/search?q={prompt}").status_code == 200
        after = model_identity._identity.cache_info()
        assert after.misses == before.misses  # not computed again
        assert after.hits >= before.hits + 3  # but asked for each time
