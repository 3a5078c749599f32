"""The 8-bit scan picks candidates; the results are exact search's."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from beets_audiofeatures.clap import engine
from beets_audiofeatures.clap.index import (
    KEY_DTYPE,
    DamagedIndexError,
    Index,
    load_index,
    write_index,
)
from beets_audiofeatures.clap.search import Ranking, measured_recall, rank
from beets_audiofeatures.clap.store import stores
from beetsplug.audiofeatures.settings.clap import library_cache
from tests import synth
from tests.helpers import ClapHelper

pytest.importorskip("faiss")

ROWS = 30_000
DIM = 64


def unit(matrix: np.ndarray) -> np.ndarray:
    rows: np.ndarray = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return rows.astype(np.float32)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Index]:
    """Clustered vectors (like real embeddings) in a written index."""
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((300, DIM))
    matrix = unit(
        centres[rng.integers(0, 300, ROWS)]
        + 0.6 * rng.standard_normal((ROWS, DIM))
    )
    folder = tmp_path_factory.mktemp("index")
    ids = np.arange(1, ROWS + 1, dtype=np.int64) * 3  # not the row numbers
    keys = np.full(ROWS, "k", KEY_DTYPE)
    return folder, write_index(folder, ids, matrix, keys)


def same(scanned: Ranking, exact: Ranking) -> None:
    assert scanned.ids.tolist() == exact.ids.tolist()
    np.testing.assert_allclose(scanned.scores, exact.scores, atol=1e-5)
    np.testing.assert_allclose(scanned.per_prompt, exact.per_prompt, atol=1e-5)


def test_the_scan_gives_the_results_of_exact_search(indexed):
    _folder, index = indexed
    assert index.engine is not None
    exact = dataclasses.replace(index, engine=None)
    rng = np.random.default_rng(1)
    matrix = np.asarray(index.matrix)
    for _ in range(5):
        prompts = unit(matrix[rng.integers(0, ROWS, 2)] + 0.2)
        avoid = unit(rng.standard_normal((1, DIM)))
        rows = np.sort(rng.choice(ROWS, int(ROWS * 0.6), replace=False))
        exclude = rows[:10]
        for kwargs in (
            {"limit": 50},
            {"limit": 20, "avoid": avoid},
            {"limit": 50, "rows": rows},
            {"limit": 10, "rows": rows, "exclude": exclude},
            {"limit": 50, "min_score": 0.3},
        ):
            same(
                rank(index, prompts[:1], **kwargs),
                rank(exact, prompts[:1], **kwargs),
            )
            same(rank(index, prompts, **kwargs), rank(exact, prompts, **kwargs))


def test_a_reader_never_searches_another_index_s_copy(
    indexed, tmp_path, monkeypatch
):
    source, index = indexed
    folder = tmp_path / "copied"
    shutil.copytree(source, folder)
    saved = load_index(folder)
    assert saved is not None
    assert saved[0].engine is not None
    # without faiss there is no copy, and search is exact
    monkeypatch.setattr(engine, "_faiss", lambda: None)
    plain = load_index(folder)
    assert plain is not None
    assert plain[0].engine is None
    monkeypatch.undo()
    # another index's copy under this generation's name is damage
    (copy,) = folder.glob("index-*.sq8")
    other = tmp_path / "other"
    other.mkdir()
    rows = engine.MIN_ROWS
    small = write_index(
        other, np.arange(rows, dtype=np.int64),
        np.asarray(index.matrix[:rows]), np.full(rows, "k", KEY_DTYPE),
    )  # fmt: skip
    assert small.engine is not None
    (foreign,) = other.glob("index-*.sq8")
    foreign.replace(copy)
    with pytest.raises(DamagedIndexError, match=r"\.sq8"):
        load_index(folder)


def test_a_small_index_gets_no_copy(tmp_path):
    rows = engine.MIN_ROWS - 1
    matrix = unit(np.random.default_rng(2).standard_normal((rows, 8)))
    index = write_index(
        tmp_path, np.arange(rows, dtype=np.int64), matrix,
        np.full(rows, "k", KEY_DTYPE),
    )  # fmt: skip
    assert index.engine is None
    assert not list(tmp_path.glob("index-*.sq8"))


class TestClapqueryScans(ClapHelper):
    def test_clapquery_through_the_scan_equals_exact_search(
        self, monkeypatch, tmp_path
    ):
        monkeypatch.setattr(engine, "MIN_ROWS", 1)  # the test library is small
        third = synth.make_track(tmp_path / "c140.wav", 140, "C")
        # three different pieces: copies of one would tie, in any order
        for n, source in enumerate(
            [self.audio.a120_flac, self.audio.c90_mp3, third]
        ):
            self.add_track(source, title=f"t{n}")
        self.clap()
        (store,) = stores(library_cache(self.cache, self.lib))
        assert list(store.folder.glob("index-*.sq8"))
        assert store.index().engine is not None
        scanned = json.loads(self.query("rain", "--json", "-n", "2"))
        liked = self.query("--like", "title:t1", "-n", "2")
        monkeypatch.setattr(engine, "_faiss", lambda: None)
        assert store.index().engine is None
        exact = json.loads(self.query("rain", "--json", "-n", "2"))
        assert [r["id"] for r in scanned] == [r["id"] for r in exact]
        assert [r["score"] for r in scanned] == pytest.approx(
            [r["score"] for r in exact], abs=1e-4
        )
        assert self.query("--like", "title:t1", "-n", "2") == liked


def test_a_copy_in_shards_gives_the_same_results(
    indexed, tmp_path, monkeypatch
):
    _folder, index = indexed
    monkeypatch.setattr(engine, "MIN_ROWS", 10_000)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    sharded = write_index(
        tmp_path, index.ids, np.asarray(index.matrix), index.keys
    )
    assert sharded.engine is not None
    assert len(sharded.engine.shards) == 3
    assert len(list(tmp_path.glob("index-*.sq8"))) == 3
    exact = dataclasses.replace(index, engine=None)
    rng = np.random.default_rng(3)
    rows = np.sort(rng.choice(ROWS, ROWS // 10, replace=False))
    for _ in range(5):
        prompt = unit(rng.standard_normal((1, DIM)))
        for kwargs in ({"limit": 50}, {"limit": 20, "rows": rows}):
            same(rank(sharded, prompt, **kwargs), rank(exact, prompt, **kwargs))
    reread = load_index(tmp_path)
    assert reread is not None
    assert reread[0].engine is not None
    assert len(reread[0].engine.shards) == 3


def test_an_inverted_file_scanning_every_group_is_exact(indexed, tmp_path):
    _folder, index = indexed
    every = engine.groups(ROWS)
    options = engine.ScanOptions(kind="ivf", nprobe=every)
    ivf = write_index(
        tmp_path, index.ids, np.asarray(index.matrix), index.keys, options
    )
    assert ivf.scan_kind == "ivf"
    assert list(tmp_path.glob("index-*.ivf"))
    assert not list(tmp_path.glob("index-*.sq8"))
    exact = dataclasses.replace(index, engine=None)
    rng = np.random.default_rng(4)
    rows = np.sort(rng.choice(ROWS, ROWS // 10, replace=False))
    for _ in range(5):
        prompt = unit(rng.standard_normal((1, DIM)))
        for kwargs in ({"limit": 50}, {"limit": 20, "rows": rows}):
            same(rank(ivf, prompt, **kwargs), rank(exact, prompt, **kwargs))
    assert measured_recall(ivf) == 1.0


def test_an_inverted_file_scanning_few_groups_reports_its_recall(tmp_path):
    # vectors without clusters: the hardest case for an inverted file
    rng = np.random.default_rng(8)
    matrix = unit(rng.standard_normal((ROWS, DIM)))
    ids, keys = np.arange(ROWS, dtype=np.int64), np.full(ROWS, "k", KEY_DTYPE)
    (tmp_path / "exact").mkdir()
    index = write_index(tmp_path / "exact", ids, matrix, keys)
    few = engine.ScanOptions(kind="ivf", nprobe=1)
    ivf = write_index(tmp_path, ids, matrix, keys, few)
    recall = measured_recall(ivf)
    assert 0.0 < recall < 1.0
    more = load_index(tmp_path, engine.ScanOptions(kind="ivf", nprobe=16))
    assert more is not None
    assert recall < measured_recall(more[0]) <= 1.0
    assert measured_recall(index) == 1.0  # the exact scan


def test_auto_turns_to_an_inverted_file_past_its_size(monkeypatch):
    auto = engine.ScanOptions()
    assert auto.wanted(engine.MIN_ROWS - 1) == ""
    assert auto.wanted(engine.IVF_FROM_ROWS - 1) == "exact"
    assert auto.wanted(engine.IVF_FROM_ROWS) == "ivf"
    assert engine.ScanOptions(kind="exact").wanted(10**8) == "exact"
    monkeypatch.setattr(engine, "_faiss", lambda: None)
    assert engine.ScanOptions(kind="ivf").wanted(10**8) == ""


class TestInvertedFileSetting(ClapHelper):
    def test_the_setting_rebuilds_the_copy_and_stats_show_its_recall(
        self, monkeypatch
    ):
        monkeypatch.setattr(engine, "MIN_ROWS", 1)  # the test library is small
        for n, source in enumerate([self.audio.a120_flac, self.audio.c90_mp3]):
            self.add_track(source, title=f"t{n}")
        self.clap()
        store = self.store()
        assert store.index().scan_kind == "exact"
        before = json.loads(self.query("rain", "--json"))
        self.config["audiofeatures"]["clap"]["index"] = "ivf"
        self.io.getoutput()
        self.clap("--stats")
        stats = self.io.getoutput()
        assert (
            "index: 2 vectors, an inverted file of 2 groups scanning 32: "
            in stats
        )
        assert "recall@50 1.000 over 20 queries" in stats
        assert list(store.folder.glob("index-*.ivf"))
        assert json.loads(self.query("rain", "--json")) == before
        self.config["audiofeatures"]["clap"]["nprobe"] = 0
        line = self.fails("clapquery", "rain")
        assert line == ("audiofeatures.clap.nprobe is 0: use 1 or more")
        self.config["audiofeatures"]["clap"]["nprobe"] = 32
        self.config["audiofeatures"]["clap"]["index"] = "hnsw"
        assert self.fails("clap", "--stats") == (
            "audiofeatures.clap.index is 'hnsw': use one of auto, exact, ivf"
        )
        self.run_command("ls")  # a command that does not use it works
