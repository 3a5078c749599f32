"""``beet clapweb``'s page and API through Flask's test client, on a
real library, real audio and a real (tiny, random) CLAP model; and
``beet clap --map`` / ``beet clapmap``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from beets import logging as beets_logging

from beets_audiofeatures.clap.projection import MAP_FILE, load_projection
from beetsplug.audiofeatures.library_query import item_id
from beetsplug.audiofeatures.settings.clap import QUERY, ClapSettings
from beetsplug.audiofeatures.settings.web import WebSettings
from tests.helpers import ClapHelper

pytest.importorskip("flask", reason="the [web] extra is not installed")

from flask.testing import FlaskClient

from beetsplug.audiofeatures.web.app import create_app
from beetsplug.audiofeatures.web.library_search import LibrarySearch

TOKEN = "a-secret-of-more-than-16-characters"
XSS = "<img src=x onerror=alert(1)>"


def encode(source: Path, target: Path, *codec: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(source),
         *codec, str(target)],
        check=True, capture_output=True,
    )  # fmt: skip
    return target


class ClosingClient(FlaskClient):
    """Reads each answer whole and closes it, as a browser would: a file
    sent is never left open."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = super().open(*args, **kwargs)
        response.get_data()
        response.close()
        return response


class WebHelper(ClapHelper):
    @pytest.fixture(autouse=True)
    def _web(self, _clap: None, tmp_path: Path) -> None:
        self.playlists = tmp_path / "playlists"
        self.playlists.mkdir()
        self.config["audiofeatures"]["web"]["playlist_dir"] = str(
            self.playlists
        )
        self._closers: list[Any] = []

    @pytest.fixture(autouse=True)
    def _close_apps(self) -> Any:
        yield
        for audio in getattr(self, "_closers", []):
            audio.close()

    def client(self) -> Any:
        """A test client of the app ``beet clapweb`` serves."""
        settings = ClapSettings(self.config["audiofeatures"]["clap"])
        log = beets_logging.getLogger("beets.audiofeatures")
        app, audio = create_app(
            LibrarySearch(self.lib, settings.require(*QUERY), log),
            WebSettings(self.config["audiofeatures"]["web"]),
            log,
        )
        self._closers.append(audio)
        app.testing = False  # errors as a user sees them
        app.test_client_class = ClosingClient
        return app.test_client()

    def embedded(self) -> dict[str, int]:
        ids = self.library()
        self.clap()
        return ids

    @staticmethod
    def csrf(page: str) -> str:
        match = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert match
        return match.group(1)


class TestSearch(WebHelper):
    def test_the_page_ranks_tracks_for_a_prompt_and_the_url_holds_it(self):
        ids = self.embedded()
        page = self.client().get("/?q=dusty+jazz+piano&query=artist:synth")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert 'value="dusty jazz piano"' in html
        assert 'value="artist:synth"' in html
        shown = re.findall(r'<tr data-id="(\d+)">', html)
        assert sorted(map(int, shown)) == sorted(ids.values())
        for number in ids.values():
            assert (
                f'<audio controls preload="none" src="/audio/{number}">' in html
            )

    def test_the_api_ranks_within_a_beets_query_best_first(self):
        ids = self.embedded()
        answer = self.client().get("/api/search?q=dusty+jazz&query=title:a-")
        assert answer.status_code == 200
        results = answer.get_json()["results"]
        assert {r["id"] for r in results} == {
            ids["a-flac"],
            ids["a-mp3"],
            ids["a-ogg"],
        }
        scores = [r["score"] for r in results]
        assert scores == sorted(scores, reverse=True)
        first = results[0]
        assert set(first) >= {
            "title", "artist", "album", "year", "bpm", "key", "score", "audio"
        }  # fmt: skip
        assert first["audio"] == f"/audio/{first['id']}"

    def test_the_text_model_loads_once_per_server(self):
        self.embedded()
        client = self.client()
        self.logged()
        for prompt in ("dusty jazz", "calm ambient pad", "heavy metal"):
            assert client.get(f"/api/search?q={prompt}").status_code == 200
        loads = [line for line in self.logged() if "loading CLAP model" in line]
        assert len(loads) == 1

    def test_more_like_this_ranks_the_same_music_first_without_the_seed(self):
        ids = self.embedded()
        answer = self.client().get(f"/api/search?like={ids['a-flac']}")
        order = [r["id"] for r in answer.get_json()["results"]]
        assert ids["a-flac"] not in order
        assert set(order[:2]) == {ids["a-mp3"], ids["a-ogg"]}
        assert order[-1] == ids["c-mp3"]

    def test_radio_from_here_is_beet_clapradio(self):
        ids = self.embedded()
        # What tells the other piece from versions of the seed (the tiny
        # model's vectors barely differ): its key and tempo.
        for title, number in ids.items():
            item = self.lib.get_item(number)
            assert item is not None
            other = title == "c-mp3"
            item.update({"essentia_key": "C" if other else "Am",
                         "essentia_bpm": 90.0 if other else 120.0})  # fmt: skip
            item.store()
        client = self.client()
        radio = client.get(f"/api/radio/{ids['a-flac']}").get_json()
        self.io.getoutput()
        self.run_command("clapradio", f"id:{ids['a-flac']}", "--json")
        command = json.loads(self.io.getoutput())
        assert radio["results"]
        assert [r["id"] for r in radio["results"]] == [r["id"] for r in command]
        page = client.get(f"/?radio={ids['a-flac']}").get_data(as_text=True)
        assert "radio from synth - a-flac" in page
        within = client.get(f"/api/radio/{ids['a-flac']}?query=title:c-mp3")
        assert [r["id"] for r in within.get_json()["results"]] == [ids["c-mp3"]]

    def test_tracks_embedded_while_the_server_runs_are_found(self):
        ids = self.embedded()
        client = self.client()
        url = "/api/search?q=jazz&query=artist:synth"
        assert len(client.get(url).get_json()["results"]) == len(ids)
        self.add_track(self.audio.a120_m4a, title="a-m4a", artist="synth")
        self.clap()
        titles = [r["title"] for r in client.get(url).get_json()["results"]]
        assert sorted(titles) == ["a-flac", "a-m4a", "a-mp3", "a-ogg", "c-mp3"]

    def test_a_query_alone_lists_its_tracks_unranked(self):
        ids = self.embedded()
        results = (
            self.client()
            .get("/api/search?query=title:c-")
            .get_json()["results"]
        )
        assert [(r["id"], r["score"]) for r in results] == [
            (ids["c-mp3"], None)
        ]


class TestErrors(WebHelper):
    def test_a_bad_query_is_a_json_400(self):
        self.embedded()
        client = self.client()
        for query in ['"unclosed', "title::["]:
            answer = client.get(
                "/api/search", query_string={"q": "x", "query": query}
            )
            assert answer.status_code == 400
            assert answer.is_json
            assert "invalid query" in answer.get_json()["error"]
        page = client.get("/", query_string={"q": "x", "query": "title::["})
        assert page.status_code == 400
        html = page.get_data(as_text=True)
        assert 'role="alert">invalid query' in html
        assert 'value="title::["' in html  # kept, to be corrected

    def test_unknown_ids_are_json_404s(self):
        self.embedded()
        client = self.client()
        for url in ("/api/search?like=9999", "/audio/9999", "/api/radio/9999",
                    "/playlist.m3u8?ids=9999", "/api/nothing"):  # fmt: skip
            answer = client.get(url)
            assert answer.status_code == 404, url
            assert answer.is_json
            assert answer.get_json()["error"]
        assert client.get("/api/search?like=x").status_code == 400
        assert client.get("/api/search?like=²").status_code == 400
        assert client.get("/playlist.m3u8?ids=1,²").status_code == 400

    def test_a_missing_model_is_a_json_503(self, tmp_path):
        self.embedded()
        self.config["audiofeatures"]["clap"]["model"] = str(tmp_path / "gone")
        answer = self.client().get("/api/search?q=a+new+prompt")
        assert answer.status_code == 503
        assert "beet clap" in answer.get_json()["error"]

    def test_a_prompt_the_model_cannot_load_for_is_a_json_503(self, tmp_path):
        model = tmp_path / "model"
        shutil.copytree(self.assets.model_dir, model)
        self.config["audiofeatures"]["clap"]["model"] = str(model)
        self.embedded()
        client = self.client()
        # The weights (which name the store) stay; the tokenizer is gone.
        for name in ("tokenizer.json", "vocab.json", "merges.txt"):
            (model / name).unlink(missing_ok=True)
        answer = client.get("/api/search?q=never+asked+before")
        assert answer.status_code == 503
        error = answer.get_json()["error"]
        assert error.startswith("audiofeatures.clap")
        assert "Traceback" not in error

    def test_no_vectors_yet_is_a_json_503(self):
        self.library()
        answer = self.client().get("/api/search?q=jazz")
        assert answer.status_code == 503
        assert "run beet clap first" in answer.get_json()["error"]


class TestAudio(WebHelper):
    def test_a_range_request_gets_206_and_those_bytes(self):
        ids = self.embedded()
        path = Path(os.fsdecode(self.item(ids["a-mp3"]).path))
        data = path.read_bytes()
        client = self.client()
        part = client.get(
            f"/audio/{ids['a-mp3']}", headers={"Range": "bytes=100-199"}
        )
        assert part.status_code == 206
        assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
        assert part.data == data[100:200]
        assert part.mimetype == "audio/mpeg"
        whole = client.get(f"/audio/{ids['a-mp3']}")
        assert whole.status_code == 200
        assert whole.headers["Accept-Ranges"] == "bytes"
        assert whole.data == data

    @pytest.mark.parametrize(
        ("name", "codec", "magic", "mime"),
        [
            ("alac.m4a", ("-c:a", "alac"), b"fLaC", "audio/flac"),
            ("wavpack.wv", ("-c:a", "wavpack"), b"fLaC", "audio/flac"),
            ("wma.wma", ("-c:a", "wmav2"), b"ID3", "audio/mpeg"),
        ],
    )
    def test_formats_browsers_cannot_play_are_transcoded(
        self, tmp_path, name, codec, magic, mime
    ):
        source = encode(self.audio.a120_wav, tmp_path / name, *codec)
        item = self.add_track(source, title=name)
        assert item.format in ("ALAC", "WavPack", "Windows Media")
        client = self.client()
        whole = client.get(f"/audio/{item_id(item)}")
        assert whole.status_code == 200
        assert whole.mimetype == mime
        assert whole.data.startswith(magic)
        part = client.get(
            f"/audio/{item_id(item)}", headers={"Range": "bytes=0-3"}
        )
        assert part.status_code == 206
        assert part.data == whole.data[:4]

    def test_paths_and_traversal_reach_no_file(self):
        self.embedded()
        client = self.client()
        for url in (
            "/audio/../../etc/passwd", "/audio/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
            "/audio/..%2f..%2fetc%2fpasswd", "/audio/-1", "/audio/1.0",
            "/static/../app.py", "/static/%2e%2e/app.py", "/static/",
            "/audio/", "/assets/../../setup.cfg",
        ):  # fmt: skip
            answer = client.get(url)
            assert answer.status_code in (404, 405), url
            assert b"root:" not in answer.data
            assert b"import" not in answer.data

    def test_a_track_whose_file_is_gone_is_a_404(self):
        ids = self.embedded()
        os.unlink(self.item(ids["c-mp3"]).path)
        answer = self.client().get(f"/audio/{ids['c-mp3']}")
        assert answer.status_code == 404
        assert "missing" in answer.get_json()["error"]


class TestEscaping(WebHelper):
    def test_tag_text_is_shown_as_text(self):
        ids = self.embedded()
        item = self.item(ids["a-ogg"])
        item.title = XSS
        item.artist = '"><script>alert(2)</script>'
        item.store()
        client = self.client()
        html = client.get("/?q=jazz").get_data(as_text=True)
        assert XSS not in html
        assert "<script>alert" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
        # the prompt and the query are the visitor's text: escaped too
        html = client.get(
            "/", query_string={"q": XSS, "query": f"title:{XSS}"}
        ).get_data(as_text=True)
        assert XSS not in html
        answer = client.get("/api/search?q=jazz")
        assert answer.mimetype == "application/json"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'self'" in answer.headers["Content-Security-Policy"]

    def test_an_error_line_is_escaped(self):
        self.embedded()
        html = (
            self.client()
            .get("/", query_string={"like": XSS})
            .get_data(as_text=True)
        )
        assert XSS not in html


class TestToken(WebHelper):
    def test_with_a_token_nothing_is_served_without_it(self):
        ids = self.embedded()
        self.config["audiofeatures"]["web"]["token"] = TOKEN
        client = self.client()
        for url in ("/", "/api/search?q=jazz", f"/audio/{ids['a-mp3']}",
                    "/api/map", "/static/page.js", "/assets/plotly.min.js"):  # fmt: skip
            assert client.get(url).status_code == 401, url
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert (
            client.get("/api/search?q=jazz", headers=bearer).status_code == 200
        )
        wrong = {"Authorization": "Bearer another-secret-of-16-characters"}
        assert (
            client.get("/api/search?q=jazz", headers=wrong).status_code == 401
        )

    def test_the_token_in_the_address_becomes_a_cookie(self):
        self.embedded()
        self.config["audiofeatures"]["web"]["token"] = TOKEN
        client = self.client()
        assert (
            client.get("/?token=wrong-token-of-16-characters").status_code
            == 401
        )
        answer = client.get(f"/?token={TOKEN}&q=jazz")
        assert answer.status_code == 302
        assert answer.headers["Location"] == "/?q=jazz"
        cookie = answer.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert client.get("/?q=jazz").status_code == 200

    def test_without_a_token_only_this_machines_names_are_served(self):
        self.embedded()
        client = self.client()
        for host in ("127.0.0.1:8337", "localhost:8337", "[::1]:8337"):
            answer = client.get("/api/search?q=jazz", headers={"Host": host})
            assert answer.status_code == 200, host
        rebound = client.get(
            "/api/search?q=jazz", headers={"Host": "attacker.example:8337"}
        )
        assert rebound.status_code == 403
        assert "not this machine" in rebound.get_json()["error"]

    def test_off_this_machine_clapweb_needs_a_token(self):
        line = self.fails("clapweb", "--host", "0.0.0.0")
        assert "audiofeatures.web.token" in line

    def test_a_short_token_is_refused_without_repeating_it(self):
        self.config["audiofeatures"]["web"]["token"] = "short-secret"
        line = self.fails("clapweb", "--host", "0.0.0.0")
        assert "too short" in line
        assert "short-secret" not in line


class TestPlaylists(WebHelper):
    def save(self, client: Any, csrf: str | None, **form: str) -> Any:
        headers = {"X-CSRF-Token": csrf} if csrf else {}
        return client.post("/api/playlists", data=form, headers=headers)

    def test_saving_needs_the_csrf_token(self):
        ids = self.embedded()
        client = self.client()
        answer = self.save(client, None, name="jazz", ids=str(ids["a-mp3"]))
        assert answer.status_code == 403
        answer = self.save(client, "forged", name="jazz", ids=str(ids["a-mp3"]))
        assert answer.status_code == 403
        assert client.get("/api/playlists").status_code == 405
        assert not list(self.playlists.iterdir())

    def test_a_saved_playlist_lands_in_playlist_dir(self):
        ids = self.embedded()
        client = self.client()
        csrf = self.csrf(client.get("/").get_data(as_text=True))
        order = f"{ids['c-mp3']},{ids['a-flac']}"
        answer = self.save(client, csrf, name="Night jazz", ids=order)
        assert answer.status_code == 201
        assert answer.get_json() == {"saved": "Night jazz.m3u8", "tracks": 2}
        lines = (self.playlists / "Night jazz.m3u8").read_text().splitlines()
        assert lines[0] == "#EXTM3U"
        assert lines[1].startswith("#EXTINF:15,synth - c-mp3")
        assert lines[2] == os.fsdecode(self.item(ids["c-mp3"]).path)
        # the form's own field does as well as the header
        answer = client.post(
            "/api/playlists",
            data={"name": "Night jazz", "ids": order, "csrf_token": csrf},
        )
        assert answer.status_code == 409  # exists: not replaced silently
        answer = client.post(
            "/api/playlists",
            data={
                "name": "Night jazz",
                "ids": order,
                "csrf_token": csrf,
                "replace": "1",
            },
        )
        assert answer.status_code == 201

    def test_a_playlist_never_leaves_playlist_dir(self, tmp_path):
        ids = self.embedded()
        client = self.client()
        csrf = self.csrf(client.get("/").get_data(as_text=True))
        for name in ("../escaped", "..", "/tmp/escaped", "a/b", "a\\b",
                     ".hidden", "x\x00y", "", "a" * 101):  # fmt: skip
            answer = self.save(client, csrf, name=name, ids=str(ids["a-mp3"]))
            assert answer.status_code == 400, name
        assert not list(self.playlists.iterdir())
        assert not (tmp_path / "escaped.m3u8").exists()
        assert not Path("/tmp/escaped.m3u8").exists()

    def test_without_a_playlist_folder_saving_says_so(self):
        ids = self.embedded()
        self.config["audiofeatures"]["web"]["playlist_dir"] = None
        client = self.client()
        csrf = self.csrf(client.get("/").get_data(as_text=True))
        answer = self.save(client, csrf, name="x", ids=str(ids["a-mp3"]))
        assert answer.status_code == 409
        assert "playlist_dir" in answer.get_json()["error"]

    def test_the_list_downloads_as_m3u8(self):
        ids = self.embedded()
        answer = self.client().get(
            f"/playlist.m3u8?ids={ids['a-ogg']},{ids['a-mp3']}"
        )
        assert answer.status_code == 200
        assert answer.headers["Content-Disposition"].startswith("attachment")
        lines = answer.get_data(as_text=True).splitlines()
        assert lines[0] == "#EXTM3U"
        assert lines[2] == os.fsdecode(self.item(ids["a-ogg"]).path)
        assert lines[4] == os.fsdecode(self.item(ids["a-mp3"]).path)
        assert self.client().get("/playlist.m3u8?ids=1;rm").status_code == 400


class TestMap(WebHelper):
    def test_the_map_api_places_every_current_track(self):
        ids = self.embedded()
        client = self.client()
        data = client.get("/api/map").get_json()
        assert sorted(data["ids"]) == sorted(ids.values())
        assert all(0 <= v <= 1 for v in data["x"] + data["y"])
        assert (
            data["labels"][data["ids"].index(ids["c-mp3"])] == "synth – c-mp3"
        )
        assert (self.store().folder / MAP_FILE).exists()
        # the same music in other formats lands close, the other far
        xy = {
            n: np.array([x, y])
            for n, x, y in zip(data["ids"], data["x"], data["y"], strict=True)
        }
        near = np.linalg.norm(xy[ids["a-flac"]] - xy[ids["a-ogg"]])
        far = np.linalg.norm(xy[ids["a-flac"]] - xy[ids["c-mp3"]])
        assert near < far

    def test_colour_by_a_field(self):
        ids = self.embedded()
        for number, year in zip(
            ids.values(), (1990, 1991, 1992, 2001), strict=True
        ):
            item = self.item(number)
            item.year = year
            item.genres = ["jazz"] if year < 2000 else ["metal", "rock"]
            item.store()
        client = self.client()
        years = client.get("/api/map?colour=year").get_json()
        assert years["colour"]["numeric"] is True
        assert sorted(years["colour"]["values"]) == [1990, 1991, 1992, 2001]
        genres = client.get("/api/map?colour=genres").get_json()["colour"]
        assert genres["numeric"] is False
        assert sorted(genres["values"]) == [
            "jazz",
            "jazz",
            "jazz",
            "metal, rock",
        ]
        answer = client.get("/api/map?colour=no_such_field")
        assert answer.status_code == 400
        answer = client.get("/api/map?colour=year;drop table items")
        assert answer.status_code == 400

    def test_the_map_is_recomputed_when_the_tracks_change(self):
        ids = self.embedded()
        self.run_command("clap", "--map")
        saved = load_projection(self.store().folder)
        assert saved is not None
        assert len(saved) == 4
        self.logged()
        self.run_command("clap", "--map")
        assert any("up to date" in line for line in self.logged())
        self.item(ids["c-mp3"]).remove()
        self.add_track(self.audio.a120_m4a, title="a-m4a", artist="synth")
        self.clap()
        labels = self.client().get("/api/map").get_json()["labels"]
        assert sorted(labels) == [
            "synth – a-flac", "synth – a-m4a", "synth – a-mp3", "synth – a-ogg"
        ]  # fmt: skip

    def test_clapmap_writes_one_self_contained_file(self, tmp_path):
        ids = self.embedded()
        item = self.item(ids["a-ogg"])
        item.title = "</script><script>alert(1)</script>"
        item.store()
        target = tmp_path / "map.html"
        self.run_command("clapmap", "-o", str(target), "--colour", "year")
        html = target.read_text()
        assert "Plotly" in html
        assert "mapTraces" in html
        assert not re.search(r"<script[^>]+src=", html)
        assert "</script><script>alert(1)" not in html
        points = re.search(r"const data = (\{.*?\});\n", html)
        assert points is not None
        assert len(json.loads(points.group(1))["ids"]) == 4

    def test_clapmap_needs_a_file(self):
        assert "-o FILE" in self.fails("clapmap")


class TestWithoutTheWebExtra(WebHelper):
    def test_the_web_commands_name_the_pip_command_and_others_still_work(
        self, monkeypatch
    ):
        self.embedded()
        monkeypatch.setitem(sys.modules, "flask", None)  # as if not installed
        line = self.fails("clapweb")
        assert "pip install 'beets-audiofeatures[web]'" in line
        assert "pip install" in self.fails("clapmap", "-o", "x.html")
        assert "a-flac" in self.query("jazz")
