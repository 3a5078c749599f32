"""The CLAP store, the model it belongs to and the files it is given,
through the real ``beet`` on real on-disk libraries: a run that embeds
nothing, a damaged index, new weights under the old name, damaged model
files, paths that never end (a FIFO, ``/dev/zero``) and a file cut
short after it was imported."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from beets_audiofeatures.clap.store import EmbeddingStore, stores
from beetsplug.audiofeatures.library_query import library_name
from tests import clap_fixtures, synth
from tests.conftest import Audio, ClapAssets
from tests.synth import BEET


@dataclass
class Run:
    returncode: int
    out: str
    err: str
    seconds: float


@dataclass
class Library:
    env: dict[str, str]
    db: Path
    cache: Path
    model: Path
    music: Path  # the library folder (beets stores paths relative to it)

    def beet(self, *args: str, timeout: float = 300) -> Run:
        """``beet ARGS``; on a timeout its whole process group is killed
        (a decoder stuck on a FIFO must not outlive the test)."""
        started = time.monotonic()
        process = subprocess.Popen(
            [BEET, *args], env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
        run = Run(process.returncode, out, err, time.monotonic() - started)
        assert "Traceback" not in run.err, run.err
        return run

    def paths(self) -> list[Path]:
        with sqlite3.connect(self.db) as conn:
            rows = conn.execute("SELECT path FROM items ORDER BY id")
            return [self.music / os.fsdecode(path) for (path,) in rows]

    def stores(self) -> dict[str, EmbeddingStore]:
        folder = self.cache / library_name(self.db)
        return {store.tag: store for store in stores(folder)}


def clap_library(
    tmp_path: Path, audio: Audio, model: Path, count: int, settings: str
) -> Library:
    """``count`` imported copies of one track, CLAP set to ``model``."""
    cache = tmp_path / "cache"
    env, db = synth.library_of_copies(
        tmp_path, audio.a120_wav, count,
        f"{{clap: {{model: '{model}', cache_dir: '{cache}', {settings}}}}}",
    )  # fmt: skip
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")  # the weight digests
    return Library(env, db, cache, model, tmp_path / "music")


@pytest.fixture
def library(tmp_path: Path, audio: Audio, clap: ClapAssets) -> Library:
    """Two imported tracks and a model folder of the library's own."""
    model = shutil.copytree(clap.model_dir, tmp_path / "tiny-clap")
    return clap_library(tmp_path, audio, model, 2, "jobs: 1, windows: 1")


# -- case 1: a run that embeds nothing ----------------------------------------


def test_a_store_left_with_no_vectors_takes_new_ones(
    library: Library, tmp_path: Path
):
    assert library.beet("clap").returncode == 0
    (store,) = library.stores().values()
    assert library.beet("rm", "-f").returncode == 0  # every vector goes
    empty = library.beet("clapquery", "dusty jazz piano")
    assert "no tracks are embedded" in empty.err
    # the index of no vectors that 0.1.0 then crashed on, forever
    assert json.loads((store.folder / "index.json").read_text())["rows"] == 0

    incoming = tmp_path / "incoming"
    assert library.beet("import", "-A", "-q", str(incoming)).returncode == 0
    assert library.beet("clap").returncode == 0
    assert len(store.index()) == 2
    stats = library.beet("clap", "--stats")
    assert "embedded 2, missing 0" in stats.out
    assert "index: 2 vectors" in stats.out
    assert library.beet("clap", "--prune").returncode == 0
    found = library.beet("clapquery", "dusty jazz piano")
    assert found.returncode == 0
    assert len(found.out.splitlines()) == 2


def test_a_damaged_index_is_rebuilt_with_one_line(library: Library):
    assert library.beet("clap").returncode == 0
    (store,) = library.stores().values()
    (matrix,) = store.folder.glob("index-*.f32")
    matrix.write_bytes(b"and then nothing")
    stats = library.beet("clap", "--stats")
    assert stats.returncode == 0
    (line,) = [line for line in stats.err.splitlines() if "was damaged" in line]
    assert line == (
        f"audiofeatures: the CLAP index in {store.folder} was damaged "
        f"({matrix.name} is cut short or garbled); rebuilt it from the 2 "
        "vector "
        "files"
    )
    assert "index: 2 vectors" in stats.out
    again = library.beet("clapquery", "dusty jazz piano")
    assert len(again.out.splitlines()) == 2
    assert "was damaged" not in again.err  # repaired once, for good


# -- case 7: the model is its weights -----------------------------------------


def test_new_weights_in_the_same_folder_get_a_store_of_their_own(
    library: Library, tmp_path: Path, clap: ClapAssets
):
    assert library.beet("clap").returncode == 0
    library.beet("clapquery", "dusty jazz piano")
    (old,) = library.stores().values()
    retrained = clap_fixtures.make_model(
        tmp_path / "retrained", clap.tokenizer_dir, seed=1
    )
    weights = library.model / "model.safetensors"
    size = weights.stat().st_size
    shutil.copyfile(retrained / "model.safetensors", weights)
    assert weights.stat().st_size == size  # same name, size and config

    second = library.beet("clap")
    assert second.returncode == 0
    assert "embedding 2 tracks" in second.err  # the new model ran
    (new,) = [s for tag, s in library.stores().items() if tag != old.tag]
    before, after = old.index(), new.index()
    assert before.ids.tolist() == after.ids.tolist()
    for row in range(len(before)):
        assert not np.allclose(after.matrix[row], before.matrix[row])
    # prompt vectors follow the model: cached afresh in the new store
    library.beet("clapquery", "dusty jazz piano")
    (old_prompt,) = (old.folder / "prompts").iterdir()
    new_prompt = new.folder / "prompts" / old_prompt.name
    assert not np.allclose(np.load(new_prompt), np.load(old_prompt))

    third = library.beet("clap")  # the same weights: nothing to redo
    assert third.returncode == 0
    assert "loading CLAP model" not in third.err
    digests = json.loads(
        (tmp_path / "xdg" / "beets-audiofeatures" / "weight-digests.json")
        .read_text()
    )  # fmt: skip
    assert str(weights.resolve()) in digests


# -- case 13: damaged model files ---------------------------------------------


def _cut_weights(model: Path) -> str:
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100_000])
    return (
        f"audiofeatures.clap: the CLAP weights {weights} are damaged "
        "(Error while deserializing header: incomplete metadata, file not "
        "fully covered): replace the file with a complete copy"
    )


def _other_config(model: Path) -> str:
    config = json.loads((model / "config.json").read_text())
    config["text_config"]["hidden_size"] = 128
    (model / "config.json").write_text(json.dumps(config))
    return (
        f"audiofeatures.clap: the CLAP model in {model} does not fit together: "
    )


@pytest.mark.parametrize("damage", [_cut_weights, _other_config])
def test_a_damaged_model_is_one_line_that_names_the_file_and_the_fix(
    library: Library, damage
):
    expected = damage(library.model)
    run = library.beet("clap")
    assert run.returncode == 1
    (line,) = [line for line in run.err.splitlines() if "error" in line]
    assert line.removeprefix("error: ").startswith(expected), run.err


# -- case 9: paths that never end --------------------------------------------


def test_a_fifo_and_a_link_to_dev_zero_fail_at_once(library: Library):
    fifo, zero = library.paths()
    fifo.unlink()
    os.mkfifo(fifo)
    zero.unlink()
    zero.symlink_to("/dev/zero")
    # Each used to hold beet clap for 300 s with ffmpeg at 100 % CPU;
    # what is left is starting beets and loading the model.
    run = library.beet("clap", timeout=120)
    assert run.seconds < 30
    assert run.returncode == 1
    assert f"{fifo}: not a regular file: a FIFO" in run.err
    assert (
        f"{zero}: not a regular file: a character device (a link to "
        "/dev/zero)" in run.err
    )


# -- case 15: a file cut short after import ------------------------------------


def test_a_file_cut_short_says_what_the_library_expected(library: Library):
    cut, whole = library.paths()
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) * 3 // 10])  # a copy that broke off
    run = library.beet("clap")
    assert run.returncode == 1
    (line,) = [line for line in run.err.splitlines() if "truncated" in line]
    assert line.startswith(
        f"audiofeatures: {cut}: truncated: the audio stops at 4."
    )
    assert line.endswith("s of the 15.0 s the library expects")
    assert str(whole) not in run.err


def test_a_bad_like_query_is_one_line(library: Library):
    assert library.beet("clap").returncode == 0
    run = library.beet("clapquery", "--like", "title::[")
    assert run.returncode == 1
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: invalid query 'title::['")


# -- case 2: two libraries, one cache ------------------------------------------


def test_two_libraries_sharing_a_cache_keep_their_own_vectors(
    library: Library, tmp_path: Path, audio: Audio
):
    other_db = tmp_path / "other.db"
    other = ["-l", str(other_db)]
    second = tmp_path / "second"
    second.mkdir()
    synth.encode(audio.c90_mp3, second / "c90.flac")
    synth.make_track(second / "c100.flac", 100, "C")
    assert (
        library.beet(*other, "import", "-A", "-q", str(second)).returncode == 0
    )
    assert library.beet("clap").returncode == 0
    (mine,) = library.stores().values()
    before = np.array(mine.index().matrix)
    # The other library has items 1 and 2 as well, with other music.
    run = library.beet(*other, "clap")
    assert run.returncode == 0, run.err
    np.testing.assert_array_equal(mine.index().matrix, before)
    assert library.beet(*other, "rm", "-f", "id:1").returncode == 0
    assert library.beet(*other, "clap", "--prune").returncode == 0
    np.testing.assert_array_equal(mine.index().matrix, before)
    stats = library.beet("clap", "--stats").out
    assert "embedded 2, missing 0, stale 0, orphaned 0" in stats
    assert "other store" not in stats  # the other library's are not here
    folders = {p.name for p in library.cache.iterdir()}
    assert folders == {library_name(library.db), library_name(other_db)}
    note = json.loads(
        (library.cache / library_name(library.db) / "library.json").read_text()
    )
    assert note == {"database": str(library.db)}


# -- case 3: an id beets hands to a new track ---------------------------------


def test_a_reused_item_id_does_not_inherit_the_removed_tracks_vector(
    library: Library, tmp_path: Path, audio: Audio
):
    assert library.beet("clap").returncode == 0
    (store,) = library.stores().values()
    with sqlite3.connect(library.db) as conn:  # removed without the plugin
        (last,) = conn.execute("SELECT max(id) FROM items").fetchone()
        conn.execute("DELETE FROM items WHERE id = ?", (last,))
        conn.execute("DELETE FROM item_attributes WHERE entity_id = ?", (last,))
    new = tmp_path / "new"
    new.mkdir()
    synth.make_track(new / "c100.flac", 100, "C")
    keep = tmp_path / "keep.yaml"  # an untagged album again: keep it
    keep.write_text("import: {duplicate_action: keep}\n")
    run = library.beet("-c", str(keep), "import", "-A", "-q", str(new))
    assert run.returncode == 0
    with sqlite3.connect(library.db) as conn:
        (reused,) = conn.execute("SELECT max(id) FROM items").fetchone()
    assert reused == last  # SQLite gave the dead track's id to the new one
    assert not store.has(reused, "")
    assert reused in store.disk_keys()  # the dead track's vector is there

    like = library.beet("clapquery", "--like", f"id:{reused}")
    assert like.returncode == 1
    assert "has no vector yet" in like.err
    found = library.beet("clapquery", "--like", "id:1", "--json").out
    assert [r["id"] for r in json.loads(found)] == []  # not the silent one
    stats = library.beet("clap", "--stats").out
    assert "embedded 1, missing 1, stale 1, orphaned 0" in stats
    plan = library.beet("clap", "-p").out
    assert "would embed 1 of 2 tracks" in plan
    assert library.beet("clap").returncode == 0
    stats = library.beet("clap", "--stats").out
    assert "embedded 2, missing 0, stale 0, orphaned 0" in stats


# -- case 5: new audio at the same path ----------------------------------------


def test_new_audio_at_the_same_path_is_embedded_again(
    library: Library, audio: Audio
):
    assert library.beet("clap").returncode == 0
    (store,) = library.stores().values()
    old = np.array(store.index().matrix[0])
    first, _second = library.paths()
    synth.encode(audio.c90_mp3, first)  # a re-rip, under the old name
    assert library.beet("update").returncode == 0
    stats = library.beet("clap", "--stats").out
    assert "embedded 1, missing 1, stale 1" in stats
    run = library.beet("clap")
    assert "embedding 1 track" in run.err
    assert (
        "embedded 2, missing 0, stale 0" in library.beet("clap", "--stats").out
    )
    # the new vector is the new music's
    assert not np.allclose(store.index().matrix[0], old)


# -- case 8: two models, one item ---------------------------------------------


def test_each_model_keeps_its_own_vectors_for_an_item(
    library: Library, tmp_path: Path, clap: ClapAssets
):
    second = clap_fixtures.make_model(
        tmp_path / "second-model", clap.tokenizer_dir, seed=2
    )
    with_second = tmp_path / "second.yaml"
    with_second.write_text(f"audiofeatures: {{clap: {{model: '{second}'}}}}\n")
    assert library.beet("clap").returncode == 0
    assert library.beet("-c", str(with_second), "clap", "id:1").returncode == 0
    assert len(library.stores()) == 2
    # the first model still has both tracks, whatever the second did
    assert "nothing to embed" in library.beet("clap").err
    found = library.beet("clapquery", "dusty jazz piano", "--json").out
    assert sorted(r["id"] for r in json.loads(found)) == [1, 2]
    like = json.loads(library.beet("clapquery", "--like", "id:1", "--json").out)
    assert [r["id"] for r in like] == [2]
    # the second model has one track, and says so
    run = library.beet("-c", str(with_second), "clapquery", "--like", "id:2")
    assert run.returncode == 1
    assert "has no vector yet" in run.err
    stats = library.beet("-c", str(with_second), "clap", "--stats").out
    assert "embedded 1, missing 1, stale 0" in stats
    assert "2 current vectors" in stats  # the first model's store


# -- case 4: beet rm during a run ---------------------------------------------


def test_a_track_removed_during_beet_clap_stays_removed(
    tmp_path: Path, audio: Audio, clap: ClapAssets
):
    library = clap_library(
        tmp_path, audio, clap.model_dir, 16,
        "jobs: 1, windows: 3, batch_size: 3",
    )  # fmt: skip
    env, db = library.env, library.db
    with sqlite3.connect(db) as conn:
        (last,) = conn.execute("SELECT max(id) FROM items").fetchone()
    run = subprocess.Popen(
        [BEET, "clap"], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as conn:
            if conn.execute(
                "SELECT 1 FROM item_attributes WHERE key = 'clap_uid'"
            ).fetchone():
                break
        time.sleep(0.02)
    assert library.beet("rm", "-f", f"id:{last}").returncode == 0
    _out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert "removed from the library during the run" in err
    with sqlite3.connect(db) as conn:
        left = conn.execute(
            "SELECT key FROM item_attributes WHERE entity_id = ?", (last,)
        ).fetchall()
    assert left == []  # not brought back by the run
    (store,) = library.stores().values()
    assert last not in store.disk_keys()
    assert (
        "embedded 15, missing 0, stale 0, orphaned 0"
        in library.beet("clap", "--stats").out
    )


# -- a missing ffmpeg ---------------------------------------------------------


def test_without_ffmpeg_clap_is_one_line_and_essentia_still_reads_flac(
    library: Library, tmp_path: Path
):
    empty = tmp_path / "no-tools"
    empty.mkdir()
    library.env["PATH"] = str(empty)  # nothing to run: no ffmpeg, no ffprobe
    run = library.beet("clap")
    assert run.returncode == 1
    assert run.err.strip().splitlines() == [
        (
            "error: audiofeatures: ffmpeg is not installed; CLAP decodes "
            "audio with it (apt install ffmpeg, brew install ffmpeg, ...)"
        )
    ]
    assert not library.stores()
    analysed = library.beet("essentia", "--profile", "rhythm")
    assert analysed.returncode == 0, analysed.err
    assert "analysed 2" in analysed.err
