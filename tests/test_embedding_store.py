"""The vector store and its index, and ranking over it."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from beets_audiofeatures.clap.audio import WindowPolicy
from beets_audiofeatures.clap.search import rank
from beets_audiofeatures.clap.store import EmbeddingStore, stores
from beets_audiofeatures.vectors import unit


def vector(seed: int, dim: int = 8) -> np.ndarray:
    return unit(np.random.default_rng(seed).standard_normal(dim))


def open_store(root: Path, tag: str = "tiny-0123456789") -> EmbeddingStore:
    return EmbeddingStore(root, tag).open({"model": "tiny"})


def test_vectors_round_trip_and_the_index_follows_puts_and_discards(tmp_path):
    store = open_store(tmp_path)
    for item_id in (3, 1, 2000):
        store.put(item_id, vector(item_id))
    np.testing.assert_array_equal(store.get(2000), vector(2000))
    index = store.index()
    assert index.ids.tolist() == [1, 3, 2000]
    np.testing.assert_array_equal(index.matrix[2], vector(2000))

    store.put(3, vector(33))  # re-embedded
    store.discard([1])
    index = store.index()
    assert index.ids.tolist() == [3, 2000]
    np.testing.assert_array_equal(index.matrix[0], vector(33))
    assert store.get(1) is None
    assert [s.tag for s in stores(tmp_path)] == [store.tag]


def test_a_lost_or_damaged_index_is_rebuilt_from_the_vectors(tmp_path):
    store = open_store(tmp_path)
    for item_id in range(5):
        store.put(item_id, vector(item_id))
    store.index()
    (matrix,) = store.folder.glob("index-*.f32")
    matrix.write_bytes(b"garbage")
    assert store.index().ids.tolist() == [0, 1, 2, 3, 4]
    (store.folder / "index.json").unlink()
    assert len(store.index()) == 5


def test_a_half_written_journal_line_is_ignored(tmp_path):
    store = open_store(tmp_path)
    store.put(1, vector(1))
    store.index()
    store.put(2, vector(2))
    with open(store.folder / "journal", "ab") as journal:
        journal.write(b"+12")  # the writer died here
    store.put(3, vector(3))
    assert store.index().ids.tolist() == [1, 2, 3]


def test_nothing_half_written_is_left_when_a_write_fails(tmp_path, monkeypatch):
    store = open_store(tmp_path)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", full_disk)
    with pytest.raises(OSError, match="No space"):
        store.put(7, vector(7))
    monkeypatch.undo()
    assert not list(store.folder.rglob("*.tmp"))
    assert store.get(7) is None
    assert len(store.index()) == 0


def _writer(root: str, start: int) -> None:
    store = EmbeddingStore(Path(root), "tiny-0123456789")
    for item_id in range(start, start + 60):
        store.put(item_id, vector(item_id))
        if item_id % 20 == 0:
            store.index()


def test_two_writers_at_once_lose_nothing(tmp_path):
    open_store(tmp_path)
    context = multiprocessing.get_context("spawn")
    writers = [
        context.Process(target=_writer, args=(str(tmp_path), start))
        for start in (0, 30)  # overlapping ids
    ]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)
        assert process.exitcode == 0
    index = open_store(tmp_path).index()
    assert index.ids.tolist() == list(range(90))
    for row, item_id in enumerate(index.ids):
        np.testing.assert_array_equal(index.matrix[row], vector(int(item_id)))


def test_ranking_orders_by_similarity_and_filters(tmp_path):
    store = open_store(tmp_path)
    for item_id in range(1, 101):
        store.put(item_id, vector(item_id))
    index = store.index()
    target = vector(42)
    best = rank(index, target[None], limit=5)
    assert best.ids[0] == 42
    assert best.scores[0] == pytest.approx(1.0)
    assert list(best.scores) == sorted(best.scores, reverse=True)
    everything = rank(index, target[None])
    assert len(everything.ids) == 100

    small = np.array([5, 6, 7, 999])  # gathered: a small share
    large = np.arange(1, 90)  # scored in full, then picked
    assert index.positions(small).tolist() == [4, 5, 6]
    for subset in (small, large):
        ranked = rank(index, target[None], rows=index.positions(subset))
        expected = sorted(
            (int(i) for i in subset if i <= 100),
            key=lambda i: -float(vector(i) @ target),
        )
        assert ranked.ids.tolist() == expected

    without = rank(index, target[None], exclude=index.positions([42]), limit=3)
    assert 42 not in without.ids
    cut = rank(index, target[None], min_score=0.5)
    assert (cut.scores >= 0.5).all()
    assert 42 in cut.ids


def test_negative_prompts_push_results_down(tmp_path):
    store = open_store(tmp_path)
    for item_id in range(1, 51):
        store.put(item_id, vector(item_id))
    index = store.index()
    plain = rank(index, vector(1)[None], limit=50)
    pushed = rank(index, vector(1)[None], avoid=vector(1)[None], limit=50)
    np.testing.assert_allclose(pushed.scores, 0, atol=1e-6)
    assert plain.scores[0] > pushed.scores.max()


@pytest.mark.parametrize(
    ("duration", "starts"),
    [
        (4.0, [0.0]),
        (10.0, [0.0]),
        (15.0, [2.5]),  # room for one window: the centre 10 s
        (200.0, [20.0, 95.0, 170.0]),  # 10 % margins
    ],
)
def test_windows_are_evenly_spaced_and_depend_on_the_length_only(
    duration, starts
):
    assert WindowPolicy(count=3).starts(duration) == starts


def test_an_empty_index_takes_vectors_of_any_size(tmp_path):
    store = open_store(tmp_path)
    assert len(store.index()) == 0  # a run that embedded nothing
    store.put(5, vector(5, dim=512))
    index = store.index()
    assert index.ids.tolist() == [5]
    assert index.matrix.shape == (1, 512)
    store.discard([5])
    assert len(store.index()) == 0
    store.put(6, vector(6, dim=512))
    assert store.index().ids.tolist() == [6]


def test_a_damaged_index_is_rebuilt_with_one_warning(tmp_path, caplog):
    store = open_store(tmp_path)
    for item_id in range(3):
        store.put(item_id, vector(item_id))
    store.index()
    (ids,) = store.folder.glob("index-*.ids")
    ids.write_bytes(b"cut")
    with caplog.at_level("WARNING"):
        assert store.index().ids.tolist() == [0, 1, 2]
    (warning,) = {r.getMessage() for r in caplog.records}  # one line
    assert f"{ids.name} is cut short or garbled" in warning
    assert "rebuilt it from the 3 vector files" in warning
    caplog.clear()
    with caplog.at_level("WARNING"):
        store.index()  # repaired: no second warning
    assert not caplog.records


def test_an_index_of_another_dimension_than_its_vectors_is_rebuilt(
    tmp_path, caplog
):
    store = open_store(tmp_path)
    for item_id in (1, 2):
        store.put(item_id, vector(item_id, dim=8))
    store.index()
    for item_id in (3, 4, 5):  # another model's vectors copied in
        store.put(item_id, vector(item_id, dim=16))
    with caplog.at_level("WARNING"):
        index = store.index()
    assert index.ids.tolist() == [3, 4, 5]  # the store's size: the most
    assert index.matrix.shape == (3, 16)
    assert "new vectors have 16 values, the index 8" in caplog.text
    assert "removed 2 damaged vector files" in caplog.text
    assert not store.has(1)  # embedded again by the next run


def test_unreadable_or_odd_sized_vector_files_are_removed_by_a_rebuild(
    tmp_path, caplog
):
    store = open_store(tmp_path)
    for item_id in range(1, 5):
        store.put(item_id, vector(item_id))
    store.vector_path(2).write_bytes(b"not a vector")
    np.save(store.vector_path(3), vector(3, dim=5))
    with caplog.at_level("WARNING"):
        index = store.rebuild()
    assert index.ids.tolist() == [1, 4]
    assert "removed 2 damaged vector files" in caplog.text
    # the next beet clap sees them as not embedded and embeds them again
    assert not store.has(2)
    assert not store.has(3)


def test_a_journalled_vector_replaced_before_the_fold_is_found(tmp_path):
    store = open_store(tmp_path)
    store.put(5, vector(1), "aa")
    store.index()
    store.put(5, vector(2), "bb")
    # a newer put whose journal line is not written yet
    store.vector_path(5, "bb").rename(store.vector_path(5, "cc"))
    index = store.index()
    assert index.ids.tolist() == [5]
    assert index.key(5) == "cc"
    np.testing.assert_array_equal(index.matrix[0], vector(2))


def test_an_index_of_the_earlier_layout_is_rebuilt_silently(tmp_path, caplog):
    store = open_store(tmp_path)
    for item_id in (1, 2):
        store.put(item_id, vector(item_id), f"k{item_id}")
    # what 0.2's store left: whole .npy files and no format in index.json
    np.save(store.folder / "index.npy", np.stack([vector(1), vector(2)]))
    np.save(store.folder / "index-ids.npy", np.array([1, 2]))
    np.save(store.folder / "index-keys.npy", np.array(["k1", "k2"]))
    (store.folder / "index.json").write_text('{"rows": 2, "dim": 8}')
    with caplog.at_level("WARNING"):
        index = store.index()
    assert not caplog.records
    assert index.item_keys() == {1: "k1", 2: "k2"}
    np.testing.assert_array_equal(index.matrix[index.row(2)], vector(2))
    for name in ("index.npy", "index-ids.npy", "index-keys.npy"):
        assert not (store.folder / name).exists()
