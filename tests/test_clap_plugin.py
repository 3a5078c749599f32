"""``beet clap`` and ``beet clapquery`` on a real library, real audio and
a real (tiny, random) CLAP model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from beets.exceptions import UserError

from beetsplug.audiofeatures import clap_model
from beetsplug.audiofeatures.clap_model import ClapEmbedder, ModelSpec
from beetsplug.audiofeatures.embedding_store import EmbeddingStore, stores
from tests.conftest import ClapAssets
from tests.test_plugin import AudioFeaturesHelper


class ClapHelper(AudioFeaturesHelper):
    @pytest.fixture(autouse=True)
    def _clap(self, _audio: None, clap: ClapAssets, tmp_path: Path) -> None:
        self.assets = clap
        self.cache = tmp_path / "cache"
        settings = self.config["audiofeatures"]["clap"]
        settings["model"] = str(clap.model_dir)
        settings["cache_dir"] = str(self.cache)
        settings["jobs"] = 1
        settings["windows"] = 2

    def clap(self, *args: str) -> None:
        self.run_command("clap", *args)

    def query(self, *args: str) -> str:
        self.io.getoutput()  # drop what earlier commands printed
        self.run_command("clapquery", *args)
        return self.io.getoutput()

    def store(self) -> EmbeddingStore:
        (store,) = stores(self.cache)
        return store

    def library(self) -> dict[str, int]:
        """A few tracks: the same music in three formats, and another."""
        a = self.audio
        return {
            title: self.add_track(source, title=title, artist="synth").id
            for title, source in [
                ("a-flac", a.a120_flac), ("a-mp3", a.a120_mp3),
                ("a-ogg", a.a120_ogg), ("c-mp3", a.c90_mp3),
            ]
        }  # fmt: skip


class TestClap(ClapHelper):
    def test_embeds_matching_tracks_and_stores_fields_and_vectors(self):
        ids = self.library()
        self.clap("title:a-")
        store = self.store()
        for title in ("a-flac", "a-mp3", "a-ogg"):
            item = self.lib.get_item(ids[title])
            assert item["clap_model"] == store.tag
            assert item["clap_embedded"] > 0
            vector = store.get(item.id)
            assert vector.dtype == np.float32
            assert vector.shape == (32,)
            assert np.linalg.norm(vector) == pytest.approx(1, abs=1e-5)
        assert "clap_model" not in self.lib.get_item(ids["c-mp3"])
        assert sorted(store.index().ids.tolist()) == sorted(
            ids[t] for t in ("a-flac", "a-mp3", "a-ogg")
        )
        assert [i.title for i in self.lib.items("clap_embedded:2000..")]

    def test_the_same_file_always_gives_the_same_vector(self):
        ids = self.library()
        self.clap("title:a-flac")
        first = self.store().get(ids["a-flac"])
        self.clap("-f", "title:a-flac")
        np.testing.assert_array_equal(self.store().get(ids["a-flac"]), first)
        # the same music in other formats lands close by
        self.clap()
        close = first @ self.store().get(ids["a-ogg"])
        assert close > first @ self.store().get(ids["c-mp3"])
        assert close > 0.95

    def test_skips_what_is_done_unless_forced_and_pretend_changes_nothing(self):
        ids = self.library()
        self.clap("-p")
        assert self.io.getoutput().count("embed: ") == 4
        assert not self.cache.exists() or not list(self.cache.rglob("*.npy"))
        self.clap("title:a-flac")
        stamp = self.lib.get_item(ids["a-flac"])["clap_embedded"]
        self.io.getoutput()
        self.clap("-p")
        assert self.io.getoutput().count("embed: ") == 3
        self.clap()
        assert self.lib.get_item(ids["a-flac"])["clap_embedded"] == stamp
        self.clap("-f", "title:a-flac")
        assert self.lib.get_item(ids["a-flac"])["clap_embedded"] > stamp

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
        np.testing.assert_array_equal(
            np.load(flac), self.store().get(ids["a-flac"])
        )
        assert mp3.exists()
        assert not np.array_equal(np.load(flac), np.load(mp3))

    def test_removed_items_leave_the_store_and_the_index(self):
        ids = self.library()
        self.clap()
        item = self.lib.get_item(ids["a-mp3"])
        item.remove()
        store = self.store()
        assert store.get(ids["a-mp3"]) is None
        assert ids["a-mp3"] not in store.index().ids
        assert "a-mp3" not in self.query("--like", "title:a-flac")

    def test_moved_items_are_still_found_at_their_new_place(self, tmp_path):
        ids = self.library()
        self.clap()
        item = self.lib.get_item(ids["a-ogg"])
        item.move(basedir=os.fsencode(tmp_path / "elsewhere"))
        item.store()
        out = self.query("--like", "title:a-flac", "--json")
        paths = {r["title"]: r["path"] for r in json.loads(out)}
        assert paths["a-ogg"].startswith(str(tmp_path / "elsewhere"))
        self.clap("-p")
        assert "embed: " not in self.io.getoutput()

    def test_a_new_model_gets_its_own_store_and_stats_show_stale(self):
        ids = self.library()
        self.clap()
        old = self.store()
        self.config["audiofeatures"]["clap"]["windows"] = 1  # a new pipeline
        self.io.getoutput()
        self.clap("--stats")
        stats = self.io.getoutput()
        assert "embedded 0, missing 0, stale 4" in stats
        assert f"other store {old.tag}: 4 vectors" in stats
        self.clap("title:a-")
        new = next(s for s in stores(self.cache) if s.tag != old.tag)
        assert sorted(new.index().ids.tolist()) == sorted(
            ids[t] for t in ("a-flac", "a-mp3", "a-ogg")
        )
        assert len(old.index()) == 4  # untouched, never mixed
        self.config["audiofeatures"]["clap"]["windows"] = 2
        self.io.getoutput()
        self.clap("--stats")
        assert "embedded 1, missing 0, stale 3" in self.io.getoutput()

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
        assert self.store().get(ids["c-mp3"]) is None
        assert len(self.store().index()) == 3

    def test_a_missing_model_is_one_clear_error(self, tmp_path):
        self.library()
        self.config["audiofeatures"]["clap"]["model"] = str(tmp_path / "none")
        with pytest.raises(UserError, match=r"needs config\.json"):
            self.clap()
        self.config["audiofeatures"]["clap"]["model"] = "630k-audioset-best.pt"
        with pytest.raises(UserError, match=r"not found .*download it from"):
            self.clap()

    @pytest.mark.parametrize(
        ("key", "value", "message"),
        [
            ("jobs", 0, "jobs must be 1 or more"),
            ("windows", -1, "windows must be 1 or more"),
            ("device", "tpu", "device"),
            ("threads", "many", "threads"),
        ],
    )
    def test_bad_settings_are_one_line_errors(self, key, value, message):
        self.library()
        self.config["audiofeatures"]["clap"][key] = value
        with pytest.raises(UserError, match=message):
            self.clap()

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
        for item_id in ids.values():
            item = self.lib.get_item(item_id)
            logits = embedder.logit_scale * (prompts @ store.get(item_id))
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
        os.remove(self.lib.get_item(ids["c-mp3"]).path)  # fails to embed
        with pytest.raises(UserError, match="could not be embedded"):
            self.clap("--tags")
        assert "clap_mood" not in self.lib.get_item(ids["c-mp3"])
        assert "clap_mood" in self.lib.get_item(ids["a-flac"])

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
        return sorted(among, key=lambda i: -float(store.get(i) @ text))

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
        assert out.strip() == f"{rows[0]['title']}={rows[0]['score']:.3f}"
        playlist = tmp_path / "lists" / "metal.m3u"
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
            [self.lib.get_item(ids["a-flac"]), self.lib.get_item(ids["a-mp3"])]
        )
        album.album = "Same"
        album.store()
        other = self.lib.add_album([self.lib.get_item(ids["c-mp3"])])
        out = json.loads(self.query("-a", "--like", "title:a-ogg", "--json"))
        assert [a["id"] for a in out] == [album.id, other.id]
        assert out[0]["tracks"] == 2

    def test_a_repeated_prompt_does_not_load_the_model(self, ids, monkeypatch):
        first = self.query("dusty jazz piano at night")

        def no_model(*args, **kwargs):
            raise AssertionError("the model was loaded")

        monkeypatch.setattr(clap_model.ClapEmbedder, "__init__", no_model)
        assert self.query("dusty jazz piano at night") == first

    def test_clear_errors_without_prompt_or_vectors(self, tmp_path):
        with pytest.raises(UserError, match="needs a PROMPT"):
            self.query()
        with pytest.raises(UserError, match="run beet clap first"):
            self.query("jazz")
