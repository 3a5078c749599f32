"""Changes to a large index are appended, masked and merged, and a writer
killed at any point of that loses nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

from beets_audiofeatures.clap import engine
from beets_audiofeatures.clap import store as store_module
from beets_audiofeatures.clap.index import Index
from beets_audiofeatures.clap.search import rank
from beets_audiofeatures.clap.store import EmbeddingStore
from tests import synth
from tests.helpers import ClapHelper

pytest.importorskip("faiss")

DIM = 16
BASE = 2_000
#: Small stand-ins for the real thresholds, so the test index is small.
LIMITS = {"MERGE_MIN_ROWS": 1_000}
ENGINE_LIMITS = {"MIN_ROWS": 500}


def vector(seed: int) -> np.ndarray:
    row = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return row / np.linalg.norm(row)


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in LIMITS.items():
        monkeypatch.setattr(store_module, name, value)
    for name, value in ENGINE_LIMITS.items():
        monkeypatch.setattr(engine, name, value)
    # Page caches outlive a killed process: syncing to disk would only
    # slow the thousands of puts down.
    monkeypatch.setattr(os, "fsync", lambda fd: None)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> EmbeddingStore:
    """A store of ``BASE`` vectors (ids 1..BASE, keys k<id>), indexed."""
    root = tmp_path_factory.mktemp("template")
    store = EmbeddingStore(root, "tiny-0123456789").open({"model": "tiny"})
    for item_id in range(1, BASE + 1):
        store.put(item_id, vector(item_id), f"k{item_id}")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ENGINE_LIMITS.items():
            patch.setattr(engine, name, value)
        store.index()
    return store


@pytest.fixture
def filled(
    template: EmbeddingStore, tmp_path: Path, small_limits: None
) -> EmbeddingStore:
    shutil.copytree(template.root, tmp_path, dirs_exist_ok=True)
    return EmbeddingStore(tmp_path, template.tag)


def generation(store: EmbeddingStore) -> str:
    return str(
        json.loads((store.folder / "index.json").read_text())["generation"]
    )


def change(store: EmbeddingStore) -> None:
    """Twenty new tracks, ten re-embedded, five removed."""
    for item_id in range(BASE + 1, BASE + 21):
        store.put(item_id, vector(item_id), f"k{item_id}")
    for item_id in range(10, 20):
        store.put(item_id, vector(-item_id % 2**32), f"new{item_id}")
    store.discard(range(100, 105))


def expected(store: EmbeddingStore) -> dict[int, str]:
    """Every vector file's item and key: what the index must hold."""
    return store.disk_keys()


def same_as_rebuilt(index: Index, store: EmbeddingStore, root: Path) -> None:
    """The index answers as a fresh index of the same vector files."""
    copy = EmbeddingStore(root / "copy", store.tag)
    shutil.copytree(store.folder / "vectors", copy.folder / "vectors")
    copy.rebuild()
    fresh = copy.index()
    assert fresh.appended == 0
    assert len(index) == len(fresh)
    assert index.item_keys() == fresh.item_keys()
    rng = np.random.default_rng(5)
    rows = np.arange(0, BASE, 7)
    for _ in range(5):
        prompt = vector(int(rng.integers(1 << 30)))
        for kwargs in ({"limit": 30}, {}, {"limit": 10, "min_score": 0.2}):
            mine, theirs = (
                rank(index, prompt, **kwargs),
                rank(fresh, prompt, **kwargs),
            )
            assert mine.ids.tolist() == theirs.ids.tolist()
            np.testing.assert_allclose(mine.scores, theirs.scores, atol=1e-6)
        subset = index.positions(fresh.ids[rows])
        mine = rank(index, prompt, rows=subset, limit=20)
        theirs = rank(
            fresh, prompt, rows=fresh.positions(fresh.ids[rows]), limit=20
        )
        assert mine.ids.tolist() == theirs.ids.tolist()


def test_changes_are_appended_and_masked_and_search_sees_them(filled, tmp_path):
    store = filled
    before = generation(store)
    assert store.index().engine is not None
    change(store)
    index = store.index()
    assert generation(store) == before  # appended, not rewritten
    assert index.appended == 30
    assert len(index) == BASE + 20 - 5
    assert index.item_keys() == expected(store)
    assert index.row(100) is None
    assert index.key(15) == "new15"
    np.testing.assert_array_equal(
        index.matrix[index.row(15)], vector(-15 % 2**32)
    )
    assert index.key(BASE + 3) == f"k{BASE + 3}"
    assert index.positions([14, 100, BASE + 1]).tolist() == sorted(
        [index.row(14), index.row(BASE + 1)]
    )
    # a new vector is the first result of a search for itself
    assert rank(index, vector(BASE + 7), limit=1).ids.tolist() == [BASE + 7]
    same_as_rebuilt(index, store, tmp_path)


def test_changes_past_a_share_of_the_index_merge_into_a_new_generation(
    filled, tmp_path
):
    store = filled
    first = generation(store)
    change(store)
    store.index()
    extra = int(store_module.MERGE_SHARE * BASE)  # past the share now
    for item_id in range(BASE + 100, BASE + 100 + extra):
        store.put(item_id, vector(item_id), f"k{item_id}")
    index = store.index()
    assert generation(store) != first
    assert index.appended == 0
    assert index.live is None
    assert (store.folder / "journal").stat().st_size == 0
    assert not list(store.folder.glob(f"index-{first}*"))
    assert index.item_keys() == expected(store)
    same_as_rebuilt(index, store, tmp_path)


def test_a_reader_does_not_wait_for_a_writer_when_nothing_is_to_fold(
    filled, tmp_path
):
    store = filled
    found: list[int] = []
    with FileLock(str(store.folder / ".lock")):  # a writer mid-merge
        reader = threading.Thread(
            target=lambda: found.append(len(store.index()))
        )
        reader.start()
        reader.join(10)
        assert found == [BASE]


#: Where the writer dies: a patch run in the writer before its fold.
KILL_POINTS = {
    "while the new matrix is written": """
        real = index._write_rows
        def dying(target, values):
            if target.name.endswith(".f32"):
                target.write(values.tobytes()[: values.nbytes // 2])
                target.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            real(target, values)
        index._write_rows = dying
    """,
    "while the scan copy is built": """
        def dying(*args):
            os.kill(os.getpid(), signal.SIGKILL)
        index.engine.build = dying
    """,
    "after index.json names the new generation": """
        def dying(*args):
            os.kill(os.getpid(), signal.SIGKILL)
        index.remove_others = dying
    """,
    "before the journal is emptied": """
        real = index.remove_others
        def dying(*args):
            real(*args)
            os.kill(os.getpid(), signal.SIGKILL)
        index.remove_others = dying
    """,
}


def killed_writer(store: EmbeddingStore, patch: str, merge: bool) -> None:
    """Fold the journal in another process that dies at the patch."""
    script = (
        textwrap.dedent(
            f"""
        import os, signal, sys
        from beets_audiofeatures.clap import engine, index, store as s
        s.MERGE_MIN_ROWS = {LIMITS["MERGE_MIN_ROWS"]}
        s.MERGE_SHARE = {0.0 if merge else store_module.MERGE_SHARE}
        engine.MIN_ROWS = {ENGINE_LIMITS["MIN_ROWS"]}
        """
        )
        + textwrap.dedent(patch)
        + textwrap.dedent(
            f"""
        s.EmbeddingStore({str(store.root)!r}, {store.tag!r}).index()
        sys.exit(3)  # not killed: the patch was not reached
        """
        )
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_writer_killed_during_a_merge_loses_nothing(
    filled, tmp_path, caplog, point
):
    store = filled
    change(store)
    killed_writer(store, KILL_POINTS[point], merge=True)
    with caplog.at_level("WARNING"):
        index = store.index()
    assert not caplog.records  # a complete index, not a rebuild
    assert index.item_keys() == expected(store)
    same_as_rebuilt(index, store, tmp_path)
    names = {
        path.name.split(".")[0].split("-")[1]
        for path in store.folder.glob("index-*")
    }
    assert names == {generation(store)}  # what the dead writer left is gone


def test_a_writer_killed_during_an_append_loses_nothing(
    filled, tmp_path, caplog
):
    store = filled
    change(store)
    killed_writer(
        store,
        """
        real = index._write_rows
        def dying(target, values):
            if target.name.endswith(".keys"):
                target.write(b"x" * 40)
                target.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            real(target, values)
        index._write_rows = dying
        """,
        merge=False,
    )
    with caplog.at_level("WARNING"):
        index = store.index()
    assert not caplog.records
    assert index.appended == 30
    assert index.item_keys() == expected(store)
    same_as_rebuilt(index, store, tmp_path)


class TestAppendThroughBeet(ClapHelper):
    def test_new_and_removed_tracks_reach_search_without_a_rewrite(
        self, monkeypatch, tmp_path
    ):
        # A small library standing in for a large one: a copy from the
        # first vector on, and appends until they pass ten times the base.
        monkeypatch.setattr(engine, "MIN_ROWS", 1)
        monkeypatch.setattr(store_module, "MERGE_MIN_ROWS", 1)
        monkeypatch.setattr(store_module, "MERGE_SHARE", 10.0)
        third = synth.make_track(tmp_path / "c140.wav", 140, "C")
        first = self.add_track(self.audio.a120_flac, title="t0")
        self.add_track(self.audio.c90_mp3, title="t1")
        self.clap()
        store = self.store()
        base = generation(store)
        self.add_track(third, title="t2")
        self.clap()
        index = store.index()
        assert generation(store) == base  # appended
        assert index.appended == 1
        assert len(index) == 3
        scanned = json.loads(self.query("rain", "--json"))
        assert len(scanned) == 3
        real = engine._faiss
        monkeypatch.setattr(engine, "_faiss", lambda: None)
        exact = json.loads(self.query("rain", "--json"))
        assert [r["id"] for r in scanned] == [r["id"] for r in exact]
        monkeypatch.setattr(engine, "_faiss", real)
        self.run_command("rm", "-f", "title:t0")
        found = json.loads(self.query("rain", "--json"))
        assert first.id not in [r["id"] for r in found]
        assert len(found) == 2
        index = store.index()
        assert generation(store) == base  # masked, not rewritten
        assert len(index) == 2
        assert index.size == 3
        self.io.getoutput()
        self.clap("--stats")
        stats = self.io.getoutput()
        assert "embedded 2, missing 0, stale 0, orphaned 0" in stats
        assert "index: 2 vectors" in stats
