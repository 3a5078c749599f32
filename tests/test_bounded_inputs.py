"""Bounded inputs: every id, count, name and query the page, the commands
and the saved playlists accept is checked for type, range and length
before any work. A bad one is one line on the command line (exit status
1, no traceback) and a 4xx JSON error on the page, never a 500."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ClapHelper

HUGE_ID = "9" * 20  # beyond SQLite's 64-bit integers
MANY_TERMS = " ".join(f"title:t{n}" for n in range(3000))
#: 100 characters, 300 bytes in UTF-8: too long a file name anywhere.
WIDE_NAME = "€" * 100


class BoundedHelper(ClapHelper):
    @pytest.fixture(autouse=True)
    def _embedded(self, _clap: None, tmp_path: Path) -> None:
        self.ids = self.library()
        self.clap()
        self.playlists = tmp_path / "playlists"
        self.playlists.mkdir()
        self.config["audiofeatures"]["web"]["playlist_dir"] = str(
            self.playlists
        )
        self.config["audiofeatures"]["clap"]["playlist_dir"] = str(
            self.playlists
        )


class TestCommands(BoundedHelper):
    def one_line(self, *args: str) -> str:
        line = self.fails(*args)
        assert "\n" not in line
        assert "Traceback" not in self.caplog.text
        return line

    def test_a_value_out_of_range_is_one_line(self):
        for args, says in [
            (["clapradio", "id:1", "--bpm-window", "nan"], "--bpm-window"),
            (["clapradio", "id:1", "--bpm-window", "inf"], "--bpm-window"),
            (["clappath", "id:1", "id:2", "--bpm-window", "nan"],
             "--bpm-window"),
            (["clapquery", "jazz", "--min-score", "nan"], "--min-score"),
            (["clapquery", "jazz", "-n", HUGE_ID], "-n/--limit"),
            (["clapradio", "id:1", "-n", HUGE_ID], "-n/--limit"),
            (["clapradio", "id:1", "--max-per-artist", HUGE_ID],
             "--max-per-artist"),
            (["clapquery", "x" * 2000], "the prompt is too long"),
            (["clapradio", "id:1", "--text", "x" * 2000], "--text"),
            (["clapquery", "jazz", "--m3u", "a\x00b"], "--m3u"),
        ]:  # fmt: skip
            assert says in self.one_line(*args), args
        self.config["audiofeatures"]["web"]["map_sample"] = 10**20
        assert "map_sample" in self.one_line("clap", "--map")

    def test_an_id_beyond_64_bits_in_a_query_is_one_line(self):
        for args in [
            ["clapquery", "jazz", f"id:{HUGE_ID}"],
            ["clapquery", "jazz", "-a", f"id:{HUGE_ID}"],
            ["clapquery", "--like", f"id:{HUGE_ID}"],
            ["clapradio", f"id:{HUGE_ID}"],
            ["clapradio", "id:1", "--within", f"id:{HUGE_ID}"],
            ["clapdupes", f"id:{HUGE_ID}"],
        ]:
            assert HUGE_ID in self.one_line(*args), args

    def test_a_query_of_3000_terms_is_one_line(self):
        for args in [
            ["clapquery", "jazz", *MANY_TERMS.split()],
            ["clapquery", "--like", MANY_TERMS],
            ["clapradio", "id:1", "--within", MANY_TERMS],
            ["clapdupes", *MANY_TERMS.split()],
        ]:
            assert "3000 terms" in self.one_line(*args), args[:2]

    def test_sensible_values_still_work(self):
        self.run_command(
            "clapradio", f"id:{self.ids['a-mp3']}", "-n", "2",
            "--max-per-artist", "0", "--max-per-album", "0",
        )  # fmt: skip
        self.run_command("clapquery", "jazz", "-n", "2", "--min-score", "-1")


class TestSavedPlaylists(BoundedHelper):
    def write_playlists(self, entries: dict[str, Any]) -> str:
        self.config["audiofeatures"]["clap"]["playlists"] = entries
        return self.fails("clap", "--playlists")

    def test_a_name_that_cannot_be_a_file_name_is_one_line(self):
        for name in ["x\x00y", WIDE_NAME, "a\nb"]:
            line = self.write_playlists({name: {"seeds": "id:1"}})
            assert "a playlist's name" in line, name
            assert "\n" not in line
        assert not list(self.playlists.iterdir())

    def test_a_value_out_of_range_is_one_line(self):
        for field, value in [
            ("bpm_window", float("inf")), ("bpm_window", float("nan")),
            ("limit", 10**20), ("max_per_artist", 10**20),
            ("seeds", f"id:{HUGE_ID}"), ("query", MANY_TERMS),
        ]:  # fmt: skip
            entry = {"seeds": "id:1", field: value}
            line = self.write_playlists({"mix": entry})
            assert line.startswith("audiofeatures.clap.playlists.mix"), field
        assert not list(self.playlists.iterdir())

    def test_a_symlink_loop_as_the_folder_is_one_line(self, tmp_path):
        loop = tmp_path / "loop"
        loop.symlink_to(loop)
        self.config["audiofeatures"]["clap"]["playlist_dir"] = str(loop)
        line = self.write_playlists({"mix": {"seeds": "id:1"}})
        assert str(loop) in line


pytest.importorskip("flask", reason="the [web] extra is not installed")


class TestPage(BoundedHelper):
    def client(self) -> Any:
        from tests.test_web import WebHelper

        return WebHelper.client(self)  # type: ignore[arg-type]

    @pytest.fixture(autouse=True)
    def _close_apps(self) -> Any:
        self._closers: list[Any] = []
        yield
        for audio in self._closers:
            audio.close()

    def refused(self, answer: Any) -> str:
        assert 400 <= answer.status_code < 500, answer.get_data(as_text=True)
        assert answer.is_json
        error: str = answer.get_json()["error"]
        assert "internal error" not in error
        return error

    def test_an_id_count_or_query_out_of_range_is_a_json_4xx(self):
        client = self.client()
        for url in [
            f"/audio/{HUGE_ID}", f"/api/radio/{HUGE_ID}",
            f"/api/search?like={HUGE_ID}", f"/api/search?q=x&like={HUGE_ID}",
            f"/api/tracks?ids=1,{HUGE_ID}", f"/playlist.m3u8?ids={HUGE_ID}",
            f"/api/search?q=x&n={'9' * 5000}", f"/api/search?q={'x' * 2000}",
            f"/api/search?query=id:{HUGE_ID}",
            "/api/search?query=" + MANY_TERMS.replace(" ", "+"),
            "/api/radio/1?query=" + MANY_TERMS.replace(" ", "+"),
        ]:  # fmt: skip
            self.refused(client.get(url))
        page = client.get(f"/?radio={HUGE_ID}")  # the page: its line in HTML
        assert page.status_code == 400

    def save(self, body: Any = None, **form: Any) -> Any:
        client = self.client()
        page = client.get("/").get_data(as_text=True)
        csrf = page.split('name="csrf-token" content="')[1].split('"')[0]
        headers = {"X-CSRF-Token": csrf}
        if body is not None:
            return client.post("/api/playlists", json=body, headers=headers)
        return client.post("/api/playlists", data=form, headers=headers)

    def test_a_save_body_of_the_wrong_shape_is_a_json_400(self):
        for body in [
            [1, 2], "jazz", 3, {"name": "x", "ids": [HUGE_ID]},
            {"name": "x", "ids": [1.5]}, {"name": "x", "ids": [True]},
            {"name": ["x"], "ids": [1]}, {"name": "x", "ids": {"a": 1}},
        ]:  # fmt: skip
            self.refused(self.save(body))
        assert not list(self.playlists.iterdir())

    def test_a_name_that_cannot_be_a_file_name_is_a_json_400(self):
        for name in ["x\x00y", WIDE_NAME]:
            assert "name" in self.refused(self.save(name=name, ids="1"))
        assert not list(self.playlists.iterdir())

    def test_a_symlink_loop_as_the_folder_is_a_json_4xx(self, tmp_path):
        loop = tmp_path / "loop"
        loop.symlink_to(loop)
        self.config["audiofeatures"]["web"]["playlist_dir"] = str(loop)
        self.refused(self.save(name="x", ids="1"))

    def test_good_inputs_still_work(self):
        answer = self.save(name="Nuit " + "é" * 90, ids=f"{self.ids['a-mp3']}")
        assert answer.status_code == 201
        assert os.listdir(self.playlists) == [f"Nuit {'é' * 90}.m3u8"]
        limited = self.client().get("/api/search?q=jazz&n=2")
        assert len(limited.get_json()["results"]) == 2
