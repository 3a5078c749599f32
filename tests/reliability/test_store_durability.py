"""The CLAP cache on a bad day: a damaged scan copy, a crash between
writes, a full disk, a read-only folder, ``--prune --pretend`` and
folders of other programs in the cache."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from beets_audiofeatures.clap import engine
from beets_audiofeatures.clap import store as store_module
from beets_audiofeatures.clap.identity import model_tag
from beets_audiofeatures.clap.search import rank
from beets_audiofeatures.clap.store import MARK, EmbeddingStore
from beets_audiofeatures.errors import CacheFolderError
from beets_audiofeatures.vectors import unit
from tests.helpers import ClapHelper
from tests.reliability.mounts import fill, read_only, tmpfs

ROWS = 400
DIM = 32


def snapshot(*roots: Path) -> dict[str, tuple[int, str]]:
    """Every file and folder under ``roots`` (or the file itself): its
    mode and the digest of its bytes."""
    found: dict[str, tuple[int, str]] = {}
    for root in roots:
        paths = [root, *root.rglob("*")] if root.is_dir() else [root]
        for path in paths:
            info = path.lstat()
            digest = (
                hashlib.sha256(path.read_bytes()).hexdigest()
                if stat.S_ISREG(info.st_mode)
                else ""
            )
            found[str(path)] = (info.st_mode, digest)
    return found


def clustered(rows: int = ROWS, dim: int = DIM) -> np.ndarray:
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((20, dim))
    matrix = centres[rng.integers(0, 20, rows)] + 0.5 * rng.standard_normal(
        (rows, dim)
    )
    return np.stack([unit(row) for row in matrix]).astype(np.float32)


def filled_store(
    root: Path, rows: int = ROWS, dim: int = DIM
) -> EmbeddingStore:
    store = EmbeddingStore(root, "tiny-0123456789").open({"model": "tiny"})
    for item_id, row in enumerate(clustered(rows, dim)):
        store.put(item_id, row, "k")
    return store


def top(store: EmbeddingStore, queries: np.ndarray) -> list[list[int]]:
    index = store.index()
    return [rank(index, query, limit=5).ids.tolist() for query in queries]


# -- a damaged scan copy ---------------------------------------------------


def zero_fill(path: Path) -> None:
    path.write_bytes(bytes(path.stat().st_size))


def garble_past_header(path: Path) -> None:
    """Random bytes over all but the first 1 KB (the codes, not the
    header a reader checks)."""
    data = bytearray(path.read_bytes())
    noise = np.random.default_rng(9).integers(0, 256, len(data) - 1024)
    data[1024:] = noise.astype(np.uint8).tobytes()
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("pattern", "damage"),
    [
        ("index-*.sq8", zero_fill),
        ("index-*.sq8", garble_past_header),
        ("index-*.scale", zero_fill),
        ("index-*.f32", zero_fill),
    ],
    ids=["sq8-zeros", "sq8-garbled", "scale-zeros", "f32-zeros"],
)
def test_a_damaged_index_file_is_rebuilt_with_one_warning_and_right_results(
    tmp_path, monkeypatch, caplog, pattern, damage
):
    pytest.importorskip("faiss")
    monkeypatch.setattr(engine, "MIN_ROWS", 100)  # a copy for a small index
    store = filled_store(tmp_path)
    queries = clustered()[::50] + 0.1
    before = top(store, queries)
    assert store.index().engine is not None
    path = sorted(store.folder.glob(pattern))[0]  # a shard per core
    damage(path)
    with caplog.at_level(logging.WARNING):
        assert top(store, queries) == before
    (warning,) = {r.getMessage() for r in caplog.records}  # one line
    assert path.name in warning
    assert f"rebuilt it from the {ROWS} vector files" in warning


def test_rows_appended_since_the_base_are_checked_too(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(store_module, "MERGE_MIN_ROWS", 1)  # append, not merge
    store = filled_store(tmp_path)
    store.index()
    later = clustered(ROWS + 5)[ROWS:]
    for offset, row in enumerate(later):
        store.put(ROWS + offset, row, "k")
    appended = store.index()
    assert appended.appended == 5
    before = top(store, later)
    (matrix,) = store.folder.glob("index-*.f32")
    with open(matrix, "r+b") as data:  # the appended rows zero-filled
        data.seek(-5 * DIM * 4, os.SEEK_END)
        data.write(bytes(5 * DIM * 4))
    with caplog.at_level(logging.WARNING):
        assert top(store, later) == before
    (warning,) = {r.getMessage() for r in caplog.records}  # one line
    assert matrix.name in warning


def test_every_file_of_the_index_is_on_disk_before_index_json_names_it(
    tmp_path, monkeypatch
):
    pytest.importorskip("faiss")
    monkeypatch.setattr(engine, "MIN_ROWS", 100)
    store = filled_store(tmp_path)
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(source: str, target: str) -> None:
        events.append(("replace", os.fspath(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    store.index()
    monkeypatch.undo()
    named = json.loads((store.folder / "index.json").read_text())
    files = sorted(store.folder.glob(f"index-{named['generation']}*"))
    assert {path.suffix for path in files} >= {".f32", ".sq8", ".scale"}
    published = events.index(("replace", str(store.folder / "index.json")))
    synced = {path for kind, path in events[:published] if kind == "fsync"}
    assert {str(path) for path in files} <= synced
    # and their names: the folder is synced after the last of them
    last_file = max(
        i for i, (kind, path) in enumerate(events[:published])
        if path in {str(p) for p in files}
    )  # fmt: skip
    assert ("fsync", str(store.folder)) in events[last_file:published]


# -- a full disk -------------------------------------------------------------


def test_a_full_disk_is_one_error_and_leaves_no_partial_index(tmp_path):
    with tmpfs(tmp_path / "small", "2m") as disk:
        store = filled_store(disk, rows=150, dim=512)
        filler = fill(disk)
        # room for some of the new index's rows, not for all of them
        os.truncate(filler, filler.stat().st_size - 200_000)
        left = sorted(p.name for p in store.folder.iterdir())
        free = os.statvfs(disk).f_bfree
        with pytest.raises(CacheFolderError, match="is full"):
            store.index()
        assert sorted(p.name for p in store.folder.iterdir()) == left
        assert os.statvfs(disk).f_bfree == free
        filler.unlink()
        assert len(store.index()) == 150  # with room, it is written


class TestFullCache(ClapHelper):
    @pytest.fixture
    def full(self, tmp_path: Path) -> Iterator[None]:
        """This library embedded, one change journalled since the
        index was written, and its cache's disk full."""
        with tmpfs(self.cache, "4m"):
            self.library()
            self.clap()
            store = self.store()
            store.put(999, self.vector(1), "k")  # not folded yet
            fill(self.cache)
            yield

    @pytest.mark.usefixtures("full")
    @pytest.mark.parametrize(
        "command", [["clapquery", "rain"], ["clap", "--stats"]]
    )
    def test_a_command_is_one_line_saying_the_cache_is_full(self, command):
        line = self.fails(*command)
        assert line.startswith("audiofeatures.clap: the cache folder ")
        assert "is full (No space left on device)" in line
        assert "audiofeatures.clap.cache_dir" in line


# -- a read-only cache -------------------------------------------------------


class TestReadOnlyCache(ClapHelper):
    def test_a_read_only_cache_is_searched_with_its_journal(self):
        self.library()
        self.clap()
        self.store().discard([1])  # journalled, not folded yet
        with read_only(self.cache):
            found = self.query("synth", "-f", "$title")
        assert sorted(found.split()) == ["a-mp3", "a-ogg", "c-mp3"]
        assert self.query("synth", "-f", "$title") == found  # writable

    def test_stats_on_a_read_only_cache_count_its_journal(self):
        self.library()
        self.clap()
        self.store().discard([1])  # journalled, not folded yet
        self.io.getoutput()
        with read_only(self.cache):
            self.clap("--stats")
        said = self.io.getoutput()
        assert "embedded 3, missing 1, stale 0, orphaned 0" in said
        assert "index: 3 vectors" in said

    def test_pruning_a_read_only_cache_is_one_line(self):
        self.library()
        self.clap()
        self.store().put(999, self.vector(1), "k")  # an orphan to prune
        with read_only(self.cache):
            line = self.fails("clap", "--prune")
        assert line.startswith("audiofeatures.clap: cannot write in the cache")
        assert "(Read-only file system)" in line


# -- --prune -----------------------------------------------------------------


class TestPrune(ClapHelper):
    @pytest.fixture(autouse=True)
    def kinds_of_folder(self, _clap: None, tmp_path: Path) -> None:
        """An embedded library, an orphaned vector, an empty store of
        another model, a store of an earlier version (directly in the
        cache folder, made before stores were marked) and a TF.js model
        of another program, in the cache folder too."""
        self.library()
        self.clap()
        vector = self.vector(1)
        self.store().put(999, vector, "k")
        EmbeddingStore(self.stores, "other-0123456789").open({"model": "o"})
        identity = {"model": "earlier", "pipeline": {"version": 1}}
        self.earlier = EmbeddingStore(self.cache, model_tag(identity))
        self.earlier.open(identity).put(1, vector, "k")
        (self.earlier.folder / MARK).unlink(missing_ok=True)
        self.tfjs = self.cache / "tfjs-model"
        self.tfjs.mkdir()
        (self.tfjs / "model.json").write_text('{"format": "layers-model"}')
        (self.tfjs / "group1-shard1of1.bin").write_bytes(b"\x01" * 64)
        self.lists = tmp_path / "lists"
        self.lists.mkdir()
        (self.lists / "mine.m3u8").write_text("#EXTM3U\n")
        self.config["audiofeatures"]["clap"]["playlist_dir"] = str(self.lists)
        self.database = Path(os.fsdecode(self.lib.path))

    def test_prune_pretend_changes_nothing(self):
        before = snapshot(self.database, self.cache, self.lists)
        self.io.getoutput()
        self.clap("--prune", "--pretend")
        said = self.io.getoutput()
        assert "would prune 1 orphaned vector from " in said
        assert "would remove the empty store other-0123456789" in said
        assert (
            f"would remove the store {self.earlier.tag} of an earlier" in said
        )
        assert "tfjs-model" not in said
        after = snapshot(self.database, self.cache, self.lists)
        assert after == before

    def test_prune_removes_only_folders_the_plugin_made(self):
        theirs = snapshot(self.tfjs)
        self.io.getoutput()
        self.clap("--prune")
        said = self.io.getoutput()
        assert f"removed the store {self.earlier.tag} of an earlier" in said
        assert "removed the empty store other-0123456789" in said
        assert not self.earlier.folder.exists()
        assert snapshot(self.tfjs) == theirs
        assert 999 not in self.store().disk_keys()
