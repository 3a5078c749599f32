"""``beet clap`` and ``beet clapquery`` on a real library, real audio and
a real (tiny, random) CLAP model."""

from __future__ import annotations

import json
import os
import re
import sys

import numpy as np
import pytest
from beets.exceptions import UserError

from beets_audiofeatures.clap.embedder import ClapEmbedder
from beets_audiofeatures.clap.model import ModelSpec
from beets_audiofeatures.clap.store import EmbeddingStore, stores
from beetsplug.audiofeatures.library_query import item_id
from tests.helpers import ClapHelper


def planned(out: str) -> int:
    """How many tracks ``beet clap -p`` lists."""
    return sum(line.startswith("embed: ") for line in out.splitlines())


class TestClap(ClapHelper):
    def test_embeds_matching_tracks_and_stores_fields_and_vectors(self):
        ids = self.library()
        self.clap("title:a-")
        store = self.store()
        for title in ("a-flac", "a-mp3", "a-ogg"):
            item = self.item(ids[title])
            assert item["clap_model"] == store.tag
            assert item["clap_embedded"] > 0
            vector = self.vector(ids[title])
            assert vector.dtype == np.float32
            assert vector.shape == (32,)
            assert np.linalg.norm(vector) == pytest.approx(1, abs=1e-5)
        assert "clap_model" not in self.item(ids["c-mp3"])
        assert sorted(store.index().ids.tolist()) == sorted(
            ids[t] for t in ("a-flac", "a-mp3", "a-ogg")
        )
        assert [i.title for i in self.lib.items("clap_embedded:2000..")]

    def test_the_same_file_always_gives_the_same_vector(self):
        ids = self.library()
        self.clap("title:a-flac")
        first = self.vector(ids["a-flac"])
        self.clap("-f", "title:a-flac")
        np.testing.assert_array_equal(self.vector(ids["a-flac"]), first)
        # the same music in other formats lands close by
        self.clap()
        close = first @ self.vector(ids["a-ogg"])
        assert close > first @ self.vector(ids["c-mp3"])
        assert close > 0.95

    def test_skips_what_is_done_unless_forced_and_pretend_changes_nothing(self):
        ids = self.library()
        self.clap("-p")
        assert planned(self.io.getoutput()) == 4
        assert not self.cache.exists() or not list(self.cache.rglob("*.npy"))
        self.clap("title:a-flac")
        stamp = self.item(ids["a-flac"])["clap_embedded"]
        self.io.getoutput()
        self.clap("-p")
        assert planned(self.io.getoutput()) == 3
        self.clap()
        assert self.item(ids["a-flac"])["clap_embedded"] == stamp
        self.clap("-f", "title:a-flac")
        assert self.item(ids["a-flac"])["clap_embedded"] > stamp

    def test_every_format_decodes(self):
        a = self.audio
        sources = [a.a120_wav, a.a120_flac, a.a120_mp3, a.a120_ogg, a.a120_m4a,
                   a.opus, a.six_channels]  # fmt: skip
        for n, source in enumerate(sources):
            self.add_track(source, title=f"t{n}")
        self.clap()
        assert len(self.store().index()) == len(sources)

    def test_dump_mirrors_the_library_and_keeps_the_audio_extension(
        self, tmp_path
    ):
        ids = self.library()
        self.clap("--dump", str(tmp_path / "dump"), "title:a-")
        flac = tmp_path / "dump" / "a-flac.flac.npy"
        mp3 = tmp_path / "dump" / "a-mp3.mp3.npy"
        np.testing.assert_array_equal(np.load(flac), self.vector(ids["a-flac"]))
        assert mp3.exists()
        assert not np.array_equal(np.load(flac), np.load(mp3))

    def test_removed_items_leave_the_store_and_the_index(self):
        ids = self.library()
        self.clap()
        item = self.item(ids["a-mp3"])
        item.remove()
        store = self.store()
        assert store.has(ids["a-mp3"]) is False
        assert not store.disk_keys().get(ids["a-mp3"])
        assert ids["a-mp3"] not in store.index().ids
        assert "a-mp3" not in self.query("--like", "title:a-flac")

    def test_moved_items_are_still_found_at_their_new_place(self, tmp_path):
        ids = self.library()
        self.clap()
        item = self.item(ids["a-ogg"])
        item.move(basedir=os.fsencode(tmp_path / "elsewhere"))
        item.store()
        out = self.query("--like", "title:a-flac", "--json")
        paths = {r["title"]: r["path"] for r in json.loads(out)}
        assert paths["a-ogg"].startswith(str(tmp_path / "elsewhere"))
        self.clap("-p")
        assert planned(self.io.getoutput()) == 0

    def test_a_new_model_gets_its_own_store_and_stats_show_stale(self):
        ids = self.library()
        self.clap()
        old = self.store()
        self.config["audiofeatures"]["clap"]["windows"] = 1  # a new pipeline
        self.io.getoutput()
        self.clap("--stats")
        stats = self.io.getoutput()
        # another model's vectors are not this one's: missing, not stale
        assert "embedded 0, missing 4, stale 0" in stats
        assert f"other store {old.tag}: 4 current vectors" in stats
        self.clap("title:a-")
        new = next(s for s in stores(self.stores) if s.tag != old.tag)
        assert sorted(new.index().ids.tolist()) == sorted(
            ids[t] for t in ("a-flac", "a-mp3", "a-ogg")
        )
        assert len(old.index()) == 4  # untouched, never mixed
        self.config["audiofeatures"]["clap"]["windows"] = 2
        self.io.getoutput()
        self.clap("--stats")
        assert "embedded 4, missing 0, stale 0" in self.io.getoutput()

    def test_prune_removes_vectors_of_tracks_beets_forgot(self):
        ids = self.library()
        self.clap()
        with self.lib.transaction() as tx:  # removed without the plugin
            tx.mutate("DELETE FROM items WHERE id = ?", (ids["c-mp3"],))
        self.io.getoutput()
        self.clap("--stats")
        assert "orphaned 1" in self.io.getoutput()
        self.clap("--prune")
        assert "pruned 1" in self.io.getoutput()
        assert ids["c-mp3"] not in self.store().disk_keys()
        assert len(self.store().index()) == 3

    def test_a_missing_model_is_one_clear_error(self, tmp_path):
        self.library()
        self.config["audiofeatures"]["clap"]["model"] = str(tmp_path / "none")
        with pytest.raises(
            UserError,
            match=r"does not exist; .* a folder that holds config\.json",
        ):
            self.clap()
        self.config["audiofeatures"]["clap"]["model"] = "630k-audioset-best.pt"
        with pytest.raises(UserError, match=r"not found .*download it from"):
            self.clap()

    def test_a_failed_model_load_leaves_no_store(self, tmp_path):
        self.library()
        self.config["audiofeatures"]["clap"]["model"] = str(
            self.assets.model_dir
        )
        broken = tmp_path / "broken-model"
        broken.mkdir()
        (broken / "config.json").write_text("{}")
        self.config["audiofeatures"]["clap"]["model"] = str(broken)
        self.fails("clap")
        assert not self.cache.exists() or not any(self.cache.iterdir())
        self.config["audiofeatures"]["clap"]["model"] = str(
            self.assets.model_dir
        )
        self.clap("--stats")
        assert "other store" not in self.io.getoutput()

    def test_tracks_that_all_fail_leave_no_store(self):
        self.add_track(self.audio.text, title="not-audio")
        with pytest.raises(UserError, match="1 of 1 track could not be"):
            self.clap()
        assert not self.cache.exists() or not any(self.cache.iterdir())

    def test_prune_removes_stores_left_without_vectors(self):
        ids = self.library()
        self.clap("title:a-flac")
        kept = self.store()
        # as a failed load under 0.1.0 left it: the description only
        EmbeddingStore(self.stores, "tried-once-0123456789").open({"x": 1})
        # and a store of 0.1, when stores were not per library
        EmbeddingStore(self.cache, "old-0123456789").open({"x": 1}).put(
            1, np.ones(4, np.float32) / 2
        )
        self.clap("--stats")
        out = self.io.getoutput()
        assert (
            "other store tried-once-0123456789: 0 current vectors, 0 stale, "
            "0 orphaned (empty: --prune removes it)"
        ) in out
        assert (
            "store old-0123456789 of an earlier version: 1 vector, not used "
            "(--prune removes it)"
        ) in out
        self.clap("--prune")
        out = self.io.getoutput()
        assert "removed the empty store tried-once-0123456789" in out
        assert "removed the store old-0123456789 of an earlier version" in out
        assert [s.tag for s in stores(self.stores)] == [kept.tag]
        assert list(stores(self.cache)) == []
        assert self.vector(ids["a-flac"], kept) is not None
        # a store whose every vector was orphaned goes too
        self.item(ids["a-flac"]).remove()
        self.clap("--prune")
        assert f"removed the empty store {kept.tag}" in self.io.getoutput()
        assert list(stores(self.stores)) == []
        self.clap("--stats")  # and nothing comes back
        assert "other store" not in self.io.getoutput()
        assert list(stores(self.stores)) == []

    def test_summary_lines_count_in_words(self):
        self.add_track(self.audio.a120_flac, title="one")
        self.clap("-p")
        out = self.io.getoutput()
        assert out.startswith("would embed 1 of 1 track with ")
        assert "(2 windows each)" in out
        self.clap()
        assert any(
            line.startswith("embedding 1 track with ") for line in self.logged()
        )
        self.clap()
        (line,) = self.logged()
        assert line.startswith("nothing to embed: 1 track already embedded")
        self.clap("-p", "title:nothing-like-this")
        assert self.io.getoutput().strip() == (
            "nothing to embed: no tracks match title:nothing-like-this"
        )
        self.config["audiofeatures"]["clap"]["windows"] = 1
        self.clap("-p")
        assert "(1 window each)" in self.io.getoutput()
        self.clap("--stats")
        assert "other store " in (out := self.io.getoutput())
        assert ": 1 current vector, 0 stale, 0 orphaned" in out

    def test_auto_embeds_on_import(self, tmp_path):
        self.config["audiofeatures"]["clap"]["auto"] = True
        self.unload_plugins()
        self.load_plugins("audiofeatures")
        incoming = tmp_path / "incoming"
        incoming.mkdir()
        (incoming / "x.flac").write_bytes(self.audio.a120_flac.read_bytes())
        self.config["import"]["copy"] = False
        self.run_command("import", "-A", "-q", str(incoming))
        (item,) = self.lib.items()
        store = self.store()
        assert item["clap_model"] == store.tag
        # the index was brought up to date once, when the import ended
        assert (store.folder / "journal").stat().st_size == 0
        assert store.index().ids.tolist() == [item.id]


class TestZeroShotTags(ClapHelper):
    @pytest.fixture(autouse=True)
    def _tags(self, _clap: None) -> None:
        self.config["audiofeatures"]["clap"]["tags"] = {
            "mood": ["happy", "sad", "relaxed"],
            "Voice": {"vocals": "a singing voice", "instrumental": "no vocals"},
        }
        self.unload_plugins()  # the tag fields' types come from the config
        self.load_plugins("audiofeatures")

    def test_tags_come_from_cached_vectors_only(self):
        ids = self.library()
        self.clap()
        for item in self.lib.items():  # no audio left to decode
            os.remove(item.path)
        self.clap("--tags")

        store = self.store()
        embedder = ClapEmbedder(ModelSpec(model=str(self.assets.model_dir)))
        prompts = embedder.embed_texts(
            ["happy music", "sad music", "relaxed music"]
        )
        for number in ids.values():
            item = self.item(number)
            logits = embedder.logit_scale * (
                prompts @ self.vector(number, store)
            )
            expected = np.exp(logits - logits.max())
            expected /= expected.sum()
            got = [
                item[f"clap_mood_{label}"]
                for label in ("happy", "sad", "relaxed")
            ]
            np.testing.assert_allclose(got, expected, atol=1e-4)
            assert (
                item["clap_mood"]
                == ("happy", "sad", "relaxed")[int(np.argmax(expected))]
            )
            assert item["clap_voice"] in {"vocals", "instrumental"}
            assert item["clap_voice_vocals"] + item[
                "clap_voice_instrumental"
            ] == pytest.approx(1, abs=1e-3)
            assert item["clap_tags_model"] == store.tag
        assert len(self.lib.items("clap_mood_happy:0..1")) == 4  # typed

    def test_tracks_without_vectors_are_left_alone(self):
        ids = self.library()
        self.clap("title:a-flac")
        os.remove(self.item(ids["c-mp3"]).path)  # fails to embed
        with pytest.raises(UserError, match="could not be embedded"):
            self.clap("--tags")
        assert "clap_mood" not in self.item(ids["c-mp3"])
        assert "clap_mood" in self.item(ids["a-flac"])

    def test_nothing_to_tag_creates_no_store(self):
        self.add_track(self.audio.text, title="not-audio")
        with pytest.raises(UserError, match="could not be embedded"):
            self.clap("--tags")
        assert "1 of 1 track has no vector and is not tagged" in self.logged()
        assert not self.cache.exists() or not any(self.cache.iterdir())

    def test_tags_are_checked_before_anything_is_embedded(self):
        self.library()
        self.config["audiofeatures"]["clap"]["tags"] = {}
        assert self.fails("clap", "--tags") == (
            "no zero-shot tags are configured: add label sets under "
            "audiofeatures.clap.tags (see the docs)"
        )
        assert not self.cache.exists()

    def test_a_malformed_label_set_is_one_line(self):
        self.library()
        self.config["audiofeatures"]["clap"]["tags"] = {"mood": ["only-one"]}
        with pytest.raises(UserError, match="mood needs at least two labels"):
            self.clap("--tags")


class TestClapQuery(ClapHelper):
    @pytest.fixture
    def ids(self) -> dict[str, int]:
        ids = self.library()
        self.clap()
        return ids

    def expected(self, prompt: str, among: list[int]) -> list[int]:
        embedder = ClapEmbedder(ModelSpec(model=str(self.assets.model_dir)))
        text = embedder.embed_texts([prompt])[0]
        store = self.store()
        return sorted(among, key=lambda i: -float(self.vector(i, store) @ text))

    def titles(self, out: str) -> list[str]:
        return [line.split(" - ")[-1] for line in out.splitlines() if line]

    def test_ranks_every_embedded_track_by_the_prompt(self, ids):
        out = self.query("dusty jazz piano at night")
        expected = self.expected(
            "dusty jazz piano at night", list(ids.values())
        )
        titles = {v: k for k, v in ids.items()}
        assert self.titles(out) == [titles[i] for i in expected]
        scores = [float(line.split()[0]) for line in out.splitlines()]
        assert scores == sorted(scores, reverse=True)

    def test_a_beets_query_limits_the_candidates(self, ids):
        out = self.query("rain", "title:a-", "-n", "2")
        assert len(self.titles(out)) == 2
        assert "c-mp3" not in out
        assert self.titles(self.query("rain", "artist:nobody")) == []

    def test_min_score_json_format_and_m3u(self, ids, tmp_path):
        rows = json.loads(self.query("metal", "--json"))
        assert [r["score"] for r in rows] == sorted(
            (r["score"] for r in rows), reverse=True
        )
        assert set(rows[0]) >= {"id", "path", "title", "score", "scores"}
        middle = rows[1]["score"] - 1e-4  # shown rounded
        kept = json.loads(
            self.query("metal", "--json", "--min-score", str(middle))
        )
        assert [r["id"] for r in kept] == [r["id"] for r in rows[:2]]
        out = self.query("metal", "-f", "$title=$clap_score", "-n", "1")
        title, score = out.strip().split("=")
        assert title == rows[0]["title"]
        # three digits of the score --json gives to four (no double rounding)
        assert score == f"{float(score):.3f}"
        assert abs(float(score) - rows[0]["score"]) <= 0.0005 + 1e-9
        playlist = tmp_path / "metal.m3u"
        self.query("metal", "--m3u", str(playlist), "-n", "2")
        lines = playlist.read_text().splitlines()
        assert lines[0] == "#EXTM3U"
        assert lines[2] == rows[0]["path"]
        assert lines[4] == rows[1]["path"]

    def test_several_prompts_score_each_and_rank_by_the_mean(self, ids):
        rows = json.loads(
            self.query("--text", "jazz", "--text", "rain", "--json")
        )
        for row in rows:
            assert set(row["scores"]) == {"jazz", "rain"}
            mean = sum(row["scores"].values()) / 2
            assert row["score"] == pytest.approx(mean, abs=2e-4)

    def test_like_finds_the_same_music_first_and_not_negates(self, ids):
        out = self.query("--like", "title:a-flac")
        titles = self.titles(out)
        assert "a-flac" not in titles
        assert titles[-1] == "c-mp3"  # the other music is least alike
        rows = json.loads(self.query("metal", "--not", "metal", "--json"))
        assert all(abs(r["score"]) < 1e-3 for r in rows)

    def test_albums_are_ranked_by_their_tracks(self, ids):
        album = self.lib.add_album(
            [self.item(ids["a-flac"]), self.item(ids["a-mp3"])]
        )
        album.album = "Same"
        album.store()
        other = self.lib.add_album([self.item(ids["c-mp3"])])
        out = json.loads(self.query("-a", "--like", "title:a-ogg", "--json"))
        assert [a["id"] for a in out] == [album.id, other.id]
        assert out[0]["tracks"] == 2

    def test_a_repeated_prompt_does_not_load_the_model(self, ids, monkeypatch):
        first = self.query("dusty jazz piano at night")

        def no_model(*args, **kwargs):
            raise AssertionError("the model was loaded")

        monkeypatch.setattr(ClapEmbedder, "__init__", no_model)
        assert self.query("dusty jazz piano at night") == first

    def test_clear_errors_without_prompt_or_vectors(self, tmp_path):
        assert "needs a PROMPT" in self.fails("clapquery")
        assert "run beet clap first" in self.fails("clapquery", "jazz")


class TestClapQueryArguments(ClapHelper):
    """The grammar: the first argument is the prompt unless --text or
    --like is given; every other argument is a beets query term."""

    @pytest.fixture(autouse=True)
    def ids(self, _clap: None) -> dict[str, int]:
        self._ids = self.library()
        self.clap()
        return self._ids

    def titles(self, *args: str) -> list[str]:
        return [row["title"] for row in json.loads(self.query(*args, "--json"))]

    def test_prompt_then_query(self):
        assert sorted(self.titles("rain", "title:a-")) == [
            "a-flac", "a-mp3", "a-ogg",
        ]  # fmt: skip
        assert sorted(self.titles("rain", "title:a-", "^title:a-ogg")) == [
            "a-flac", "a-mp3",
        ]  # fmt: skip
        # query syntax beets users know: a regex on any field, a sort
        assert sorted(self.titles("rain", ":^c-")) == ["c-mp3"]
        assert len(self.titles("rain", "title:a-", "year+")) == 3
        # a prompt that merely holds a colon is a prompt
        assert len(self.titles("Jazz: smooth and late")) == 4

    def test_a_query_where_the_prompt_belongs_is_an_error(self):
        assert self.fails("clapquery", "title:a-flac") == (
            "title:a-flac is a beets query, not a prompt: give the prompt "
            'first (beet clapquery "calm piano" title:a-flac), or use '
            "--text title:a-flac to search for these words"
        )
        assert "is a beets query" in self.fails("clapquery", "album:Album One")
        # a flexible field this library has counts as a field
        item = self.item(self._ids["c-mp3"])
        item["mood_by_hand"] = "calm"
        item.store()
        assert "is a beets query" in self.fails(
            "clapquery", "mood_by_hand:calm"
        )
        # --text says it is a prompt, whatever it looks like
        assert len(self.titles("--text", "album:Album One")) == 4

    def test_an_unquoted_prompt_is_an_error(self):
        assert self.fails("clapquery", "jazz", "piano") == (
            "piano is not a beets query term (field:value): quote a prompt "
            'of several words ("jazz piano"), or add a prompt with --text '
            "piano"
        )

    def test_with_like_or_text_every_argument_is_the_query(self):
        # the trap of 0.1.0: the prompt became a query and nothing matched
        message = self.fails(
            "clapquery", "piano", "--like", "title:a-flac", "title:a-"
        )
        assert message == (
            "piano is not a beets query term (field:value): with --text or "
            "--like, every argument is the query: give the prompt as --text "
            "piano"
        )
        assert sorted(
            self.titles("--text", "piano", "--like", "title:a-flac", "title:a-")
        ) == ["a-mp3", "a-ogg"]
        assert sorted(self.titles("--like", "title:a-flac", "title:a-")) == [
            "a-mp3", "a-ogg",
        ]  # fmt: skip
        assert sorted(self.titles("--text", "piano", "title:c-")) == ["c-mp3"]
        assert "is not a beets query term" in self.fails(
            "clapquery", "--text", "piano", "strings"
        )

    def test_empty_prompts_are_refused(self):
        empty = 'is empty: give a sentence, such as "calm piano"'
        assert self.fails("clapquery", "") == f"the prompt {empty}"
        assert self.fails("clapquery", "  ") == f"the prompt {empty}"
        assert self.fails("clapquery", "--text", "") == f"--text {empty}"
        assert self.fails("clapquery", "jazz", "--not", "") == f"--not {empty}"
        assert "--like needs a beets query" in self.fails(
            "clapquery", "--like", ""
        )

    def test_a_line_says_why_nothing_is_listed(self, monkeypatch):
        def no_model(*args, **kwargs):
            raise AssertionError("the model was loaded")

        monkeypatch.setattr(ClapEmbedder, "__init__", no_model)
        self.logged()
        assert self.query("a new prompt", "artist:nobody") == ""
        assert self.logged() == ["no tracks match artist:nobody"]
        assert self.query("a new prompt", "artist:nobody", "--json") == "[]\n"
        assert self.query("a new prompt", "-a", "album:nothing") == ""
        assert self.logged()[-1] == "no albums match album:nothing"
        new = self.add_track(self.audio.c90_mp3, title="new-one")
        self.query("a new prompt", "title:new-one")
        (line,) = self.logged()
        assert line == (
            "the track matching title:new-one has no vector yet: run beet "
            "clap title:new-one"
        )
        assert "clap_model" not in self.item(item_id(new))
        monkeypatch.undo()
        assert self.query("rain", "--min-score", "0.99") == ""
        assert self.logged()[-1] == "no tracks score 0.99 or more"
        assert "--like title:nobody matches no tracks" in self.fails(
            "clapquery", "--like", "title:nobody"
        )
        assert self.fails("clapquery", "--like", "title:'a-") == (
            "--like title:'a-: No closing quotation"
        )

    def test_each_prompt_score_is_labelled(self):
        rows = json.loads(
            self.query("--text", "jazz", "--text", "rain", "--json")
        )
        out = self.query("--text", "jazz", "--text", "rain")
        for row, line in zip(rows, out.splitlines(), strict=True):
            shown = re.fullmatch(
                r"(\S+)  .* - (\S+)  \(jazz (\S+) · rain (\S+)\)", line
            )
            assert shown, line
            score, title, jazz, rain = shown.groups()
            assert title == row["title"]
            for text, value in [
                (score, row["score"]),
                (jazz, row["scores"]["jazz"]),
                (rain, row["scores"]["rain"]),
            ]:
                assert float(text) == pytest.approx(value, abs=6e-4)
        line = self.query("--text", "rain", "--like", "title:a-flac", "-n", "1")
        assert "(rain " in line
        assert " · like title:a-flac " in line
        one = self.query("rain", "-n", "1")
        assert "(" not in one  # one prompt: its score is the score

    def test_m3u_places_that_cannot_take_a_playlist(self, tmp_path):
        folder = tmp_path / "lists"
        folder.mkdir()
        assert self.fails("clapquery", "rain", "--m3u", str(folder)) == (
            f"--m3u {folder} is a folder: give the playlist's file name, "
            f"such as {folder / 'clap.m3u'}"
        )
        missing = tmp_path / "new" / "deeper" / "rain.m3u"
        assert self.fails("clapquery", "rain", "--m3u", str(missing)) == (
            f"--m3u {missing}: the folder {missing.parent} does not exist"
        )
        assert not (tmp_path / "new").exists()  # no folder was created
        if sys.platform == "linux":  # a place not even root can write
            assert self.fails(
                "clapquery", "rain", "--m3u", "/proc/rain.m3u"
            ).startswith("--m3u /proc/rain.m3u: cannot write in /proc (")
        self.query("rain", "--m3u", str(folder / "rain.m3u"), "-n", "2")
        assert (folder / "rain.m3u").read_text().count("#EXTINF") == 2
        assert os.listdir(folder) == ["rain.m3u"]  # no temporary file left
        self.query("rain", "title:nobody", "--m3u", str(folder / "rain.m3u"))
        assert (folder / "rain.m3u").read_text() == "#EXTM3U\n"
