"""``beet clapradio`` and ``beet clappath`` on a real library.

Most tests write chosen vectors into the library's store (as ``beet
clap`` would, under each track's current source key), so the order and
every rule can be checked exactly; one runs the tiny real CLAP model end
to end."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from beets.library import Item

from beets_audiofeatures.clap.identity import tokenizer_identity
from beets_audiofeatures.clap.store import EmbeddingStore
from beetsplug.audiofeatures.library_query import (
    UID,
    item_id,
    new_uid,
    source_key,
)
from beetsplug.audiofeatures.settings.clap import ClapSettings
from tests.helpers import ClapHelper

DIM = 8


def axis(n: int) -> np.ndarray:
    vector = np.zeros(DIM, np.float32)
    vector[n] = 1
    return vector


def towards(first: int, second: int, weight: float) -> np.ndarray:
    """The unit vector with ``weight`` along ``first``, the rest along
    ``second``."""
    vector: np.ndarray = weight * axis(first) + np.sqrt(1 - weight**2) * axis(
        second
    )
    return vector


class VectorLibrary(ClapHelper):
    """A library whose vectors are chosen by the test."""

    _lengths = iter(range(200, 10_000, 10))

    def settings(self) -> ClapSettings:
        return ClapSettings(self.config["audiofeatures"]["clap"])

    def vectors_store(self) -> EmbeddingStore:
        settings = self.settings()
        return settings.store(self.lib).open(settings.identity())

    def track(self, title: str, vector: np.ndarray, **fields: object) -> Item:
        """A track of the library with this (unit) vector stored as its
        current one."""
        values: dict[str, Any] = {
            "artist": f"artist of {title}",
            "album": "",
            "length": float(next(self._lengths)),
            **fields,
        }
        item = Item(path=self.lib_path / f"{title}.flac", title=title, **values)
        item[UID] = new_uid()
        item.add(self.lib)
        vector = np.asarray(vector, np.float32)
        key = source_key(item)
        assert key is not None
        self.vectors_store().put(
            item_id(item), vector / np.linalg.norm(vector), key
        )
        return item

    def prompt(self, text: str, vector: np.ndarray) -> None:
        """Put a prompt's vector in the prompt cache (no model runs)."""
        tokenizer = tokenizer_identity(self.settings().spec)
        self.vectors_store().put_prompt(text, vector, tokenizer)

    def run(self, command: str, *args: str) -> str:
        self.io.getoutput()
        self.caplog.clear()
        self.run_command(command, *args)
        return self.io.getoutput()

    def titles(self, command: str, *args: str) -> list[str]:
        rows = json.loads(self.run(command, *args, "--json"))
        return [row["title"] for row in rows]

    def radio(self, *args: str) -> list[str]:
        return self.titles("clapradio", *args)


class TestRadio(VectorLibrary):
    @pytest.fixture(autouse=True)
    def tracks(self, _clap: None) -> None:
        # A and C lean one way from the seed, B and D the other: ranked
        # by closeness to the seed they alternate; a walk stays on a side.
        self.track("seed", axis(0), bpm=120, initial_key="Am")
        self.track("A", towards(0, 1, 0.9), bpm=150, initial_key="F#")
        self.track("B", towards(0, 2, 0.8), bpm=125, initial_key="C")
        self.track("C", towards(0, 1, 0.7), bpm=60, initial_key="G")
        self.track("D", towards(0, 2, 0.6), bpm=118, initial_key="Em")

    def test_ranked_lists_the_closest_to_the_seeds_first(self):
        assert self.radio("title:seed", "--ranked") == ["A", "B", "C", "D"]
        assert self.radio("title:seed", "--ranked", "-n", "2") == ["A", "B"]

    def test_the_walk_follows_the_previous_track(self):
        # After A, C (0.7 from the seed, 0.94 from A) beats B (0.8, 0.72).
        assert self.radio("title:seed") == ["A", "C", "B", "D"]

    def test_seeds_may_be_many_and_are_never_played(self):
        assert self.radio("title:seed", "--ranked", "-n", "1") == ["A"]
        both = self.radio("title:seed", ",", "title:A", "--ranked")
        assert both == ["C", "B", "D"]  # C leans towards A, as the mean does

    def test_max_per_artist(self):
        for title in ("A", "B", "C"):
            (item,) = self.lib.items(f"title:{title}")
            item.artist = "Same Artist"
            item.store()
        assert self.radio("title:seed", "--ranked") == ["A", "B", "D"]
        assert self.radio(
            "title:seed", "--ranked", "--max-per-artist", "1"
        ) == ["A", "D"]
        assert self.radio(
            "title:seed", "--ranked", "--max-per-artist", "0"
        ) == ["A", "B", "C", "D"]
        # the setting, when no option is given
        self.config["audiofeatures"]["clap"]["max_per_artist"] = 3
        assert self.radio("title:seed", "--ranked") == ["A", "B", "C", "D"]

    def test_max_per_album(self):
        items = [next(iter(self.lib.items(f"title:{t}"))) for t in "AB"]
        self.lib.add_album(items)
        assert self.radio("title:seed", "--ranked") == ["A", "C", "D"]
        assert self.radio("title:seed", "--ranked", "--max-per-album", "2") == [
            "A",
            "B",
            "C",
            "D",
        ]

    def test_bpm_window_follows_the_previous_tempo(self):
        self.track("no-tempo", towards(0, 3, 0.95))
        # 150 is 25 % off the seed's 120; 60 is half of 125
        assert self.radio("title:seed", "--ranked", "--bpm-window", "10") == [
            "B", "D",
        ]  # fmt: skip
        logged = self.logged()
        assert (
            "left out 1 track without a tempo (beet essentia finds them)"
            in logged
        )
        assert "2 tracks of the 25 asked for meet the rules and caps" in logged
        assert self.radio(
            "title:seed", "--ranked", "--bpm-window", "10", "--half-double"
        ) == ["B", "C", "D"]
        assert self.radio("title:seed", "--ranked") == [
            "no-tempo", "A", "B", "C", "D",
        ]  # fmt: skip

    def test_harmonic_keys_follow_the_camelot_wheel(self):
        # Am (8A) -> C (8B, relative) -> G (9B) -> Em (9A, relative);
        # F# (2B) fits none of them
        assert self.radio("title:seed", "--ranked", "--harmonic") == [
            "B", "C", "D",
        ]  # fmt: skip
        assert self.radio("title:seed", "--harmonic") == ["B", "C", "D"]

    def test_within_a_beets_query(self):
        for title in ("B", "C"):
            (item,) = self.lib.items(f"title:{title}")
            item.comments = "calm"
            item.store()
        assert self.radio("title:seed", "--within", "comments:calm") == [
            "B", "C",
        ]  # fmt: skip
        assert self.radio("title:seed", "--within", "comments:none") == []
        assert self.logged() == ["no tracks match --within comments:none"]

    def test_one_version_of_a_recording(self):
        a = next(iter(self.lib.items("title:A")))
        # the same audio in another file: same vector and duration
        self.track("A-mp3", towards(0, 1, 0.9), length=a.length)
        # another recording id, though it sounds the same
        self.track(
            "A-live", towards(0, 1, 0.9), length=a.length, mb_trackid="live"
        )
        a.mb_trackid = "studio"
        a.store()
        assert self.radio("title:seed", "--ranked") == [
            "A", "A-live", "B", "C", "D",
        ]  # fmt: skip

    def test_text_and_not_steer_the_radio(self):
        self.prompt("strings", (axis(2) + axis(0) / 2) / np.sqrt(1.25))
        assert self.radio("title:seed", "--ranked", "--not", "strings") == [
            "A", "C", "B", "D",
        ]  # fmt: skip
        rows = json.loads(
            self.run("clapradio", "title:seed", "--ranked", "-t", "strings",
                     "--json", "-n", "1")
        )  # fmt: skip
        assert rows[0]["title"] == "B"
        assert rows[0]["scores"] == {"seeds": 0.8, "strings": 0.8944}

    def test_mix_aims_at_each_seed_in_turn(self):
        self.track("far-seed", axis(3))
        self.track("T", towards(3, 4, 0.9))
        self.track("U", towards(3, 4, 0.7))
        seeds = ("title:seed", ",", "title:far-seed")
        assert self.radio(*seeds, "--mix", "--ranked") == [
            "A", "T", "B", "U", "C", "D",
        ]  # fmt: skip
        # Flowing, the pull of the previous track wins over an aim that
        # is far from it: after A, C (0.94 from A) beats T (0.9 from its
        # seed, 0 from A); the far side comes once the near one is done.
        assert self.radio(*seeds, "--mix") == ["A", "C", "B", "D", "T", "U"]

    def test_a_radio_from_a_prompt_alone(self):
        self.prompt("strings", (axis(2) + axis(0) / 2) / np.sqrt(1.25))
        assert self.radio("--text", "strings", "--ranked") == [
            "D", "B", "seed", "A", "C",
        ]  # fmt: skip

    def test_output_formats_and_m3u(self, tmp_path: Path):
        out = self.run(
            "clapradio", "title:seed", "--ranked", "-n", "2",
            "-f", "$title $clap_score",
        )  # fmt: skip
        assert out.splitlines() == ["A 0.900", "B 0.800"]
        paths = self.run("clapradio", "title:seed", "--ranked", "-n", "1", "-p")
        assert paths.strip() == str(self.lib_path / "A.flac")
        playlist = tmp_path / "radio.m3u"
        self.run("clapradio", "title:seed", "--m3u", str(playlist), "-n", "2")
        lines = playlist.read_text().splitlines()
        assert lines[0] == "#EXTM3U"
        assert lines[1].endswith(",artist of A - A")
        assert lines[2] == str(self.lib_path / "A.flac")
        assert lines[4] == str(self.lib_path / "C.flac")
        # relative to the playlist, as smartplaylist's relative_to says
        self.config["smartplaylist"]["relative_to"] = "playlist"
        self.run("clapradio", "title:seed", "--m3u", str(playlist), "-n", "1")
        line = playlist.read_text().splitlines()[2]
        assert not Path(line).is_absolute()
        assert (tmp_path / line).resolve() == (
            self.lib_path / "A.flac"
        ).resolve()

    def test_nothing_changes_in_the_library(self):
        before = {i.id: dict(i) for i in self.lib.items()}
        self.radio("title:seed", "--bpm-window", "5", "--harmonic")
        assert {i.id: dict(i) for i in self.lib.items()} == before

    def test_one_line_errors(self):
        assert self.fails("clapradio") == (
            "clapradio needs a SEED_QUERY, the tracks the radio starts from "
            "(beet clapradio 'title:Blue in Green'), or a --text PROMPT"
        )
        assert self.fails("clapradio", "title:nobody") == (
            "title:nobody matches no tracks"
        )
        assert self.fails("clapradio", "title:seed", "--bpm-window", "0") == (
            "--bpm-window must be a percentage above 0, such as 6, not 0"
        )
        assert self.fails("clapradio", "title:seed", "--half-double") == (
            "--half-double needs --bpm-window PCT"
        )
        assert self.fails("clapradio", "title:seed", "-n", "0") == (
            "-n/--limit must be 1 or more, not 0"
        )
        assert (
            self.fails("clapradio", "title:seed", "--max-per-artist", "-1")
            == "--max-per-artist must be 0 (0: no cap) or more, not -1"
        )
        self.add_track(self.audio.c90_mp3, title="new")
        assert self.fails("clapradio", "title:new") == (
            "the track matching title:new has no vector yet: run "
            "beet clap title:new"
        )


class TestPath(VectorLibrary):
    @pytest.fixture(autouse=True)
    def tracks(self, _clap: None) -> None:
        # From e0 to e1 in quarter turns: waypoints at 0, 22.5, 45, 67.5
        # and 90 degrees; each candidate sits near one of them.
        def at(degrees: float, lean: float = 0.1) -> np.ndarray:
            turn = float(np.radians(degrees))
            vector: np.ndarray = (
                np.cos(turn) * axis(0)
                + np.sin(turn) * axis(1)
                + (lean * axis(2))
            )
            return vector

        self.track("from", axis(0), bpm=120, initial_key="Am")
        self.track("to", axis(1))
        self.track("Q1", at(20))
        self.track("Q2", at(47))
        self.track("Q3", at(70))
        self.track("far", axis(3))

    def path(self, *args: str) -> list[str]:
        return self.titles("clappath", "title:from", "title:to", *args)

    def test_each_step_is_closest_to_its_waypoint(self):
        assert self.path("-n", "5") == ["from", "Q1", "Q2", "Q3", "to"]
        assert self.path("-n", "3") == ["from", "Q2", "to"]
        assert self.path("-n", "2") == ["from", "to"]

    def test_no_track_twice_and_the_ends_stay_the_ends(self):
        path = self.path("-n", "7")
        assert path[0] == "from"
        assert path[-1] == "to"
        assert len(path) == len(set(path)) == 6  # five candidates in all
        assert path[-2] == "far"  # the last one left, however far

    def test_the_rules_apply_on_the_way(self):
        assert self.path("-n", "5", "--within", "^title:Q2") == [
            "from", "Q1", "Q3", "far", "to",
        ]  # fmt: skip
        for title in ("Q1", "Q2", "Q3"):
            (item,) = self.lib.items(f"title:{title}")
            item.artist = "Same"
            item.store()
        assert self.path("-n", "5", "--max-per-artist", "1") == [
            "from", "Q1", "far", "to",
        ]  # fmt: skip

    def test_scores_and_errors(self):
        rows = json.loads(self.run("clappath", "title:from", "title:to",
                                   "-n", "5", "--json"))  # fmt: skip
        assert rows[0]["score"] == pytest.approx(1, abs=1e-4)
        assert rows[-1]["score"] == pytest.approx(1, abs=1e-4)
        assert "FROM_QUERY and TO_QUERY" in self.fails("clappath", "title:from")
        assert self.fails("clappath", "title:Q", "title:to") == (
            "FROM title:Q matches 3 tracks with vectors: a path goes from "
            "one track to one track"
        )
        assert self.fails("clappath", "title:to", "title:to") == (
            "FROM and TO are the same track: a path needs two"
        )


class TestWithTheModel(ClapHelper):
    def test_a_radio_and_a_path_of_real_tracks(self, tmp_path: Path):
        ids = self.library()
        self.clap()
        # What the tags say: the tiny random model hears every track
        # nearly alike, and the keys and tempos tell them apart.
        for title, number in ids.items():
            item = self.item(number)
            item.bpm, item.initial_key = (
                (90, "C") if title == "c-mp3" else (120, "Am")
            )
            item.store()
        self.io.getoutput()
        self.run_command(
            "clapradio", "title:a-flac", "--json", "--max-per-artist", "0"
        )
        rows = json.loads(self.io.getoutput())
        titles = [row["title"] for row in rows]
        # the seed's other files are versions of it: not played again
        assert titles == ["c-mp3"]
        self.run_command(
            "clappath", "title:a-flac", "title:c-mp3", "-n", "3",
            "--max-per-artist", "0", "--m3u", str(tmp_path / "p.m3u"),
        )  # fmt: skip
        lines = (tmp_path / "p.m3u").read_text().splitlines()
        paths = [line for line in lines if not line.startswith("#")]
        assert paths[0] == self.item(ids["a-flac"]).path.decode()
        assert paths[-1] == self.item(ids["c-mp3"]).path.decode()
        assert len(paths) == 2  # the other a- files are versions of FROM


class TestSavedPlaylists(VectorLibrary):
    @pytest.fixture(autouse=True)
    def tracks(self, _clap: None, tmp_path: Path) -> None:
        self.track("seed", axis(0))
        self.track("A", towards(0, 1, 0.9))
        self.track("B", towards(0, 2, 0.8))
        self.track("C", towards(0, 1, 0.7))
        self.prompt("strings", axis(2))
        self.folder = tmp_path / "lists"
        self.settings_view = self.config["audiofeatures"]["clap"]
        self.settings_view["playlist_dir"] = str(self.folder)

    def listed(self, name: str) -> list[str]:
        lines = (self.folder / f"{name}.m3u8").read_text().splitlines()
        return [Path(line).stem for line in lines if not line.startswith("#")]

    def test_clap_playlists_writes_each_saved_radio(self):
        self.settings_view["playlists"] = {
            "strings": {"prompt": "strings", "ranked": True, "limit": 2},
            "around-seed": {"seeds": "title:seed", "query": "^title:B"},
        }
        self.run_command("clap", "--playlists")
        assert self.listed("strings") == ["B", "seed"]
        assert self.listed("around-seed") == ["A", "C"]
        assert sorted(os.listdir(self.folder)) == [
            "around-seed.m3u8",
            "strings.m3u8",
        ]  # fmt: skip  (no temporary file left)
        assert "wrote " in " ".join(self.logged())

    def test_smartplaylists_folder_is_the_default(self, tmp_path: Path):
        self.settings_view["playlist_dir"] = None
        self.settings_view["playlists"] = {"jazz": {"prompt": "strings"}}
        assert self.fails("clap", "--playlists") == (
            "audiofeatures.clap.playlist_dir is not set (nor "
            "smartplaylist.playlist_dir): name the folder the playlists go in"
        )
        self.config["smartplaylist"]["playlist_dir"] = str(tmp_path / "spl")
        self.run_command("clap", "--playlists")
        assert (tmp_path / "spl" / "jazz.m3u8").read_text().count(
            "#EXTINF"
        ) == 4

    def test_a_malformed_playlist_is_one_line_and_writes_nothing(self):
        cases = {
            "no playlists are configured: add them under "
            "audiofeatures.clap.playlists (see the docs)": {},
            "audiofeatures.clap.playlists.x needs a prompt, seeds or both": {
                "x": {"limit": 2}
            },
            "audiofeatures.clap.playlists.x.colour is not a playlist setting: "
            "use prompt, not, seeds, query, limit, ranked, mix, max_per_artist, "
            "max_per_album, bpm_window, half_double, harmonic, translate": {
                "x": {"prompt": "jazz", "colour": "red"}
            },
            "audiofeatures.clap.playlists.x.limit is 'ten': use a whole "
            "number, 1 or more": {"x": {"prompt": "jazz", "limit": "ten"}},
            "audiofeatures.clap.playlists.x: title:nobody matches no tracks": {
                "x": {"seeds": "title:nobody"}
            },
        }
        for message, playlists in cases.items():
            self.settings_view["playlists"] = playlists
            assert self.fails("clap", "--playlists") == message
        assert not self.folder.exists()


class TestSavedPlaylistsOnImport(ClapHelper):
    def test_an_auto_import_rewrites_the_saved_playlists(self, tmp_path: Path):
        clap = self.config["audiofeatures"]["clap"]
        clap["auto"] = True
        clap["playlist_dir"] = str(tmp_path / "lists")
        clap["playlists"] = {"all": {"prompt": "rain"}}
        self.unload_plugins()
        self.load_plugins("audiofeatures")
        incoming = tmp_path / "incoming"
        incoming.mkdir()
        (incoming / "x.flac").write_bytes(self.audio.a120_flac.read_bytes())
        self.config["import"]["copy"] = False
        self.run_command("import", "-A", "-q", str(incoming))
        (item,) = self.lib.items()
        lines = (tmp_path / "lists" / "all.m3u8").read_text().splitlines()
        assert lines[2] == item.path.decode()
