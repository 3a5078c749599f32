"""The services beneath ``beet clapquery``, ``beet clapradio`` and the
page: each request reads the library's source keys once, a query typed
as one text is named by its own option, a track without a vector is one
line in one wording on the command line and on the page, and no module
imports a command module."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from beets import logging as beets_logging
from beets.library import Item

from beetsplug.audiofeatures.library_query import UID, item_id, new_uid
from beetsplug.audiofeatures.settings.clap import QUERY
from beetsplug.audiofeatures.settings.web import WebSettings
from tests.test_clap_playlists import VectorLibrary, axis, towards

ADAPTER = Path(__file__).parent.parent / "beetsplug" / "audiofeatures"
#: The modules that register the commands, and so import them.
REGISTRARS = {"__init__.py", "commands/__init__.py", "commands/parsers.py"}


class TrackedLibrary(VectorLibrary):
    @pytest.fixture(autouse=True)
    def tracks(self, _clap: None) -> None:
        self.track("seed", axis(0), album="One", albumartist="X")
        self.track("A", towards(0, 1, 0.9), album="One", albumartist="X")
        self.track("B", towards(0, 2, 0.8))
        self.track("C", towards(0, 1, 0.7))

    def unembedded(self, title: str) -> Item:
        """A track of the library that has no vector yet."""
        item = Item(path=self.lib_path / f"{title}.flac", title=title)
        item[UID] = new_uid()
        item.add(self.lib)
        return item


class TestOneReadOfTheSourceKeys(TrackedLibrary):
    @pytest.fixture
    def key_reads(self) -> Iterator[list[str]]:
        """The statements that read every item's source key, as SQLite
        runs them on the library's connection."""
        statements: list[str] = []
        connection = self.lib._connection()
        connection.set_trace_callback(statements.append)
        yield statements
        connection.set_trace_callback(None)

    @staticmethod
    def reads(statements: list[str]) -> int:
        return sum("AS uid ON uid.entity_id" in s for s in statements)

    def test_clapquery_with_like_and_a_query(self, key_reads: list[str]):
        self.run("clapquery", "--like", "title:seed", "title:A", ",", "title:B")
        assert self.reads(key_reads) == 1

    def test_clapquery_of_albums_like_a_track(self, key_reads: list[str]):
        self.run("clapquery", "-a", "--like", "title:B")
        assert self.reads(key_reads) == 1

    def test_clapradio_from_seeds(self, key_reads: list[str]):
        assert self.radio("title:seed") == ["A", "C", "B"]
        assert self.reads(key_reads) == 1


class TestOneLine(TrackedLibrary):
    def test_within_names_itself_when_its_quote_is_open(self):
        assert self.fails(
            "clapradio", "title:seed", "--within", "title:'a"
        ) == ("--within title:'a: No closing quotation")

    def test_a_seed_without_a_vector_is_the_querys_line(self):
        self.unembedded("new")
        assert self.fails("clapquery", "--like", "title:new") == (
            "the track matching --like title:new has no vector yet: run "
            "beet clap title:new"
        )
        assert self.fails("clapradio", "title:new") == (
            "the track matching title:new has no vector yet: run beet clap "
            "title:new"
        )
        self.logged()
        assert self.run("clapquery", "piano", "title:new") == ""
        (line,) = self.logged()
        assert line == (
            "the track matching title:new has no vector yet: run beet clap "
            "title:new"
        )


class TestPageErrors(TrackedLibrary):
    def client(self) -> Any:
        pytest.importorskip("flask", reason="the [web] extra is not installed")
        from beetsplug.audiofeatures.web.app import create_app
        from beetsplug.audiofeatures.web.library_search import LibrarySearch

        log = beets_logging.getLogger("beets.audiofeatures")
        app, audio = create_app(
            LibrarySearch(self.lib, self.settings().require(*QUERY), log),
            WebSettings(self.config["audiofeatures"]["web"]),
            log,
        )
        self.audio_folder = audio
        app.testing = False
        return app.test_client()

    @pytest.fixture(autouse=True)
    def _close(self) -> Iterator[None]:
        yield
        if hasattr(self, "audio_folder"):
            self.audio_folder.close()

    def test_a_track_without_a_vector_is_a_409_in_the_commands_words(self):
        number = item_id(self.unembedded("new"))
        line = (
            f"the track matching id:{number} has no vector yet: run beet "
            f"clap id:{number}"
        )
        client = self.client()
        for url in (f"/api/radio/{number}", f"/api/search?like={number}"):
            answer = client.get(url)
            assert answer.status_code == 409, url
            assert answer.get_json() == {"error": line}, url

    def test_a_bad_within_query_is_a_400(self):
        seed = self.lib.items("title:seed").get()
        assert seed is not None
        beyond = f"id:{2**64}"
        answer = self.client().get(f"/api/radio/{seed.id}?query={beyond}")
        assert answer.status_code == 400
        assert "invalid query" in answer.get_json()["error"]

    def test_the_radio_still_answers(self):
        seed = self.lib.items("title:seed").get()
        assert seed is not None
        answer = self.client().get(f"/api/radio/{seed.id}?n=2")
        assert answer.status_code == 200
        titles = [r["title"] for r in answer.get_json()["results"]]
        assert titles == ["A", "C"]


def imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def test_no_module_imports_a_command_module():
    commands = "beetsplug.audiofeatures.commands."
    importers = {
        str(path.relative_to(ADAPTER)): sorted(
            name
            for name in imported_modules(path)
            if name.startswith(commands)
            and name.removeprefix(commands).split(".")[0] != "parsers"
        )
        for path in ADAPTER.rglob("*.py")
        if str(path.relative_to(ADAPTER)) not in REGISTRARS
    }
    assert {path: names for path, names in importers.items() if names} == {}
