"""Every ``-p``/``--pretend`` changes nothing (issue 24, scope 4).

Each test sets up a library where the command would do something, runs
it with ``-p``, checks that the output says what would be done, and
checks that nothing on disk changed: the beets folder (the library
database and its journal files, the music files, the configuration
folder) and the test's own folder (the CLAP store, the dump folder, the
playlist folder) hold the same names, hidden ones included, with the
same bytes, modes and modification times.

``clapquery``, ``clapradio``, ``clappath`` and ``clapdupes`` have no
``--pretend`` (``-p`` is beets' ``--path`` for the playlist commands);
``clapdupes`` is here for its promise to change nothing. ``beet import
--pretend`` is here because the plugin's import listeners run even when
beets imports nothing.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from beets_audiofeatures.clap.projection import load_projection
from beetsplug.audiofeatures.library_query import item_id
from beetsplug.audiofeatures.settings.clap import ClapSettings
from tests.essentia_models import write_models
from tests.helpers import AudioFeaturesHelper, ClapHelper

#: One name's state: its kind and permissions, mtime (ns), size, and the
#: SHA-256 of a file's bytes (None for a folder or a link).
Entry = tuple[str, int, int, str | None]


def snapshot(*roots: Path) -> dict[str, Entry | None]:
    """Every name under ``roots`` (the roots included; None for a root
    that does not exist), hidden ones included, with its state."""
    seen: dict[str, Entry | None] = {}
    for root in roots:
        if not root.exists():
            seen[str(root)] = None
            continue
        names = [root]
        for folder, dirs, files in os.walk(root):
            names.extend(Path(folder, name) for name in [*dirs, *files])
        for path in names:
            info = path.lstat()
            digest = (
                hashlib.sha256(path.read_bytes()).hexdigest()
                if stat.S_ISREG(info.st_mode)
                else None
            )
            seen[str(path)] = (
                stat.filemode(info.st_mode),
                info.st_mtime_ns,
                info.st_size,
                digest,
            )
    return seen


class PretendHelper(AudioFeaturesHelper):
    @pytest.fixture(autouse=True)
    def _folders(self, _audio: None, tmp_path: Path) -> None:
        self.folders = tmp_path
        # Any first command marks the database as looked at for 0.1.0's
        # album values (the plugin's _repair_albums): once per database, not a
        # change of the command under test.
        self.run_command("ls")

    @contextmanager
    def changes_nothing(self) -> Iterator[None]:
        """Check that the block leaves the beets folder (database, music,
        configuration) and the test's folder (store, dumps, playlists)
        exactly as they were."""
        roots = (self.temp_path, self.folders)
        before = snapshot(*roots)
        assert any(path.endswith("library.db") for path in before)
        yield
        assert snapshot(*roots) == before

    def pretend(self, *args: str) -> str:
        """Run a command with ``-p``; check it changed nothing; return
        what it printed."""
        self.io.getoutput()
        with self.changes_nothing():
            self.run_command(*args)
        return self.io.getoutput()


class TestEssentia(PretendHelper):
    @pytest.fixture(autouse=True)
    def _tracks(self, _folders: None) -> None:
        self.flac = self.add_track(self.audio.a120_flac, title="one")
        self.mp3 = self.add_track(self.audio.c90_mp3, title="two")

    def test_essentia_pretend_lists_the_tracks_and_changes_nothing(self):
        out = self.pretend("essentia", "-p", "--profile", "rhythm")
        assert "would analyse 2 of 2 tracks with profile rhythm" in out
        assert "analyse: " in out
        assert "one" in out
        assert "two" in out

    def test_essentia_pretend_with_write_changes_no_file(self):
        out = self.pretend("essentia", "-p", "-w", "--profile", "rhythm")
        assert "would analyse 2 of 2 tracks" in out

    def test_essentia_force_pretend_keeps_the_current_values(self):
        self.essentia("--profile", "rhythm", "title:one")
        analysed = self.item(item_id(self.flac))["essentia_analyzed"]
        out = self.pretend("essentia", "-p", "-f", "--profile", "rhythm")
        assert "would analyse 2 of 2 tracks with profile rhythm" in out
        assert self.item(item_id(self.flac))["essentia_analyzed"] == analysed

    def test_essentia_cluster_pretend_changes_nothing(self):
        out = self.pretend(
            "essentia", "-p", "--cluster", "local:2", "--profile", "rhythm"
        )
        assert "would analyse 2 of 2 tracks" in out

    def test_essentia_album_pretend_stores_no_album_values(self):
        self.lib.add_album([self.flac, self.mp3])
        out = self.pretend("essentia", "-p", "-a", "--profile", "rhythm")
        assert "would analyse 2 of 2 tracks with profile rhythm" in out
        assert "would store album values of 1 album" in out

    def test_essentia_album_pretend_with_nothing_to_analyse(self):
        self.lib.add_album([self.flac, self.mp3])
        self.essentia("--profile", "rhythm")  # the tracks, not the album
        out = self.pretend("essentia", "-p", "-a", "--profile", "rhythm")
        assert "nothing to analyse: 2 matching tracks" in out
        assert "would store album values of 1 album" in out

    def test_essentia_dump_pretend_makes_no_dump_folder(self):
        dumps = self.folders / "dumps"
        out = self.pretend(
            "essentia", "-p", "--dump", str(dumps), "--profile", "rhythm"
        )
        assert "would analyse 2 of 2 tracks" in out
        assert not dumps.exists()

    def test_essentia_dump_pretend_leaves_an_existing_dump_folder(self):
        dumps = self.folders / "dumps"
        (dumps / "earlier").mkdir(parents=True)
        (dumps / "earlier" / "old.json").write_text("{}\n")
        out = self.pretend(
            "essentia", "-p", "--dump", str(dumps), "--profile", "rhythm"
        )
        assert "would analyse 2 of 2 tracks" in out

    def test_essentia_pretend_with_classifiers_changes_nothing(self):
        models = write_models(
            self.folders / "models", ["mood_happy-discogs-effnet-1"]
        )
        settings = self.config["audiofeatures"]["essentia"]
        settings["models_dir"] = str(models)
        settings["models"] = ["mood_happy-discogs-effnet-1"]
        out = self.pretend("essentia", "-p")
        assert "would analyse 2 of 2 tracks" in out
        assert "lowlevel, classifiers: " in out


class TestEssentiaModels(PretendHelper):
    def test_download_models_pretend_downloads_nothing(self):
        models = write_models(
            self.folders / "models", ["mood_happy-discogs-effnet-1"]
        )
        (models / "mood_happy-discogs-effnet-1.onnx").unlink()
        settings = self.config["audiofeatures"]["essentia"]
        settings["models_dir"] = str(models)
        settings["models"] = ["mood_happy-discogs-effnet-1"]
        settings["models_url"] = "http://127.0.0.1:9/"  # nobody answers
        out = self.pretend("essentia", "--download-models", "-p")
        assert "would download each missing file below" in out
        assert (
            "missing mood_happy-discogs-effnet-1.onnx: "
            "http://127.0.0.1:9/classification-heads/mood_happy/"
            "mood_happy-discogs-effnet-1.onnx"
        ) in out


class ClapPretendHelper(PretendHelper, ClapHelper):
    @pytest.fixture(autouse=True)
    def _library(self, _clap: None, _folders: None) -> None:
        self.ids = self.library()
        # The model files' digests are remembered in the user's cache
        # folder (~/.cache/beets-audiofeatures/weight-digests.json) by
        # any command that reads the model's identity, -p included: a
        # memo of the weights' hashes, not a change -p is about.
        ClapSettings(self.config["audiofeatures"]["clap"]).identity()

    def embed_all(self) -> None:
        self.clap()
        assert len(self.store().disk_keys()) == len(self.ids)


class TestClap(ClapPretendHelper):
    def test_clap_pretend_lists_what_it_would_embed_and_changes_nothing(self):
        self.clap("title:a-flac", ",", "title:c-mp3")
        self.run_command("rm", "-f", "title:c-mp3")
        # the removal is a journal line the index has not taken in yet
        assert (self.store().folder / "journal").stat().st_size > 0
        out = self.pretend("clap", "-p")
        assert "would embed 2 of 3 tracks" in out
        assert "embed: synth -  - a-mp3" in out
        assert "embed: synth -  - a-ogg" in out
        assert "a-flac" not in out

    def test_clap_force_pretend_keeps_every_vector(self):
        self.embed_all()
        out = self.pretend("clap", "-p", "-f")
        assert "would embed 4 of 4 tracks" in out

    def test_clap_cluster_pretend_changes_nothing(self):
        self.clap("title:a-flac")
        out = self.pretend("clap", "-p", "--cluster", "local:2")
        assert "would embed 3 of 4 tracks" in out

    def test_clap_pretend_makes_no_store(self):
        out = self.pretend("clap", "-p")
        assert "would embed 4 of 4 tracks" in out
        assert not self.cache.exists()

    def test_clap_dump_pretend_writes_no_vector_file(self):
        self.clap("title:a-flac")
        dumps = self.folders / "dumps"
        out = self.pretend("clap", "-p", "--dump", str(dumps))
        assert "would embed 3 of 4 tracks" in out
        assert not dumps.exists()

    def test_clap_prune_pretend_keeps_stale_and_orphaned_vectors(self):
        self.embed_all()
        stale = self.item(self.ids["a-mp3"])
        stale.bitrate += 1000  # new audio at that path: its vector is stale
        stale.store()
        with self.lib.transaction() as tx:  # gone without beet rm's listener
            tx.mutate("DELETE FROM items WHERE id = ?", (self.ids["c-mp3"],))
        out = self.pretend("clap", "--prune", "-p")
        assert "stale 1, orphaned 1" in out
        assert "would prune 1 orphaned vector from " in out
        assert "would prune 1 stale vector from " in out

    def test_clap_tags_pretend_sets_no_tag(self):
        self.clap("title:a-flac")
        self.config["audiofeatures"]["clap"]["tags"] = {
            "mood": ["happy", "sad"]
        }
        self.unload_plugins()  # the tag fields' types come from the config
        self.load_plugins("audiofeatures")
        out = self.pretend("clap", "-p", "--tags")
        assert "would embed 3 of 4 tracks" in out
        assert "would tag 4 tracks into clap_mood" in out
        assert "clap_mood" not in self.item(self.ids["a-flac"])

    def test_clap_playlists_pretend_writes_no_playlist(self):
        self.embed_all()
        lists = self.folders / "lists"
        lists.mkdir()
        (lists / "rain.m3u8").write_text("#EXTM3U\n/an/earlier/track.flac\n")
        settings = self.config["audiofeatures"]["clap"]
        settings["playlist_dir"] = str(lists)
        settings["playlists"] = {
            "rain": {"prompt": "rain"},
            "strings": {"prompt": "strings"},
        }
        out = self.pretend("clap", "-p", "--playlists")
        assert "nothing to embed" in out
        assert (
            f"would rewrite 2 saved playlists in {lists}: rain.m3u8, "
            "strings.m3u8" in out
        )

    def test_clap_map_pretend_computes_no_map(self):
        self.embed_all()
        out = self.pretend("clap", "--map", "-p")
        assert "would map 4 tracks" in out
        assert load_projection(self.store().folder) is None


class TestClapdupes(ClapPretendHelper):
    def test_clapdupes_changes_nothing(self):
        # clapdupes has no -p: its help promises it changes nothing. From
        # a folded index (a reader folds the journal, as clapquery does).
        self.embed_all()
        out = self.pretend("clapdupes")
        assert "a-flac" in out


class TestImport(ClapPretendHelper):
    def test_import_pretend_writes_no_playlist_and_analyses_nothing(self):
        self.embed_all()
        lists = self.folders / "lists"
        lists.mkdir()
        clap = self.config["audiofeatures"]["clap"]
        clap["auto"] = True
        clap["playlist_dir"] = str(lists)
        clap["playlists"] = {"rain": {"prompt": "rain"}}
        self.config["audiofeatures"]["essentia"]["auto"] = True
        self.unload_plugins()
        self.load_plugins("audiofeatures")
        incoming = self.folders / "incoming"
        incoming.mkdir()
        (incoming / "new.flac").write_bytes(self.audio.a120_flac.read_bytes())
        self.pretend("import", "--pretend", "-A", "-q", str(incoming))
        assert len(self.lib.items()) == len(self.ids)
