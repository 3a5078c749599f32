"""A beets query's items, a chunk at a time, are the query's items."""

from __future__ import annotations

import pytest
from beets.library import Item

from beetsplug.audiofeatures.library_query import (
    item_chunks,
    item_id,
    items_by_id,
    matching_ids,
    source_key,
    source_keys,
)
from tests.helpers import AudioFeaturesHelper


class TestChunks(AudioFeaturesHelper):
    @pytest.fixture(autouse=True)
    def _items(self, _audio: None) -> None:
        for n in range(23):
            item = Item(
                path=self.lib_path / f"{n}.flac", title=f"t{n}",
                artist="odd" if n % 2 else "even", length=10.0,
            )  # fmt: skip
            item.add(self.lib)
            if n % 3 == 0:
                item["essentia_bpm"] = 100.0 + n
                item.store()

    @pytest.mark.parametrize(
        "query",
        [
            [],
            ["artist:odd"],  # a column: answered in SQL
            ["essentia_bpm:100..110"],  # a typed flexible field
            ["t1"],  # any field
            ["title::^t1[0-9]$"],  # a regular expression
            ["artist:odd", ",", "essentia_bpm:..103"],  # either
        ],
    )
    def test_the_same_items_as_lib_items(self, query):
        expected = sorted(item_id(item) for item in self.lib.items(query))
        assert matching_ids(self.lib, query) == expected
        chunks = list(item_chunks(self.lib, expected, size=5))
        assert all(len(chunk) <= 5 for chunk in chunks)
        assert [item.id for chunk in chunks for item in chunk] == expected

    def test_scattered_ids_load_as_their_items_without_the_gone_ones(self):
        wanted = [19, 2, 23, 7, 500]  # 500 was never in the library
        found = items_by_id(self.lib, wanted)
        assert sorted(found) == [2, 7, 19, 23]
        assert all(found[i].id == i for i in found)
        assert found[7].title == "t6"  # ids count from 1
        everything = items_by_id(self.lib, list(range(1, 24)) * 30)
        assert sorted(everything) == list(range(1, 24))


class TestSourceKeys(AudioFeaturesHelper):
    def test_the_sql_pass_gives_every_items_own_source_key(self):
        """``source_keys`` (one SQL pass, for queries and ``--stats``)
        and ``source_key`` (on an item, for ``beet clap``) agree, with a
        recorded file keyed by its digest, one recorded unkeyed, one
        without a digest and none."""
        records = [
            "1000 5 0123456789abcdef",
            "1000 5 0123456789abcdef unkeyed",
            "1000 5 -",
            None,
        ]
        for n, record in enumerate(records):
            item = Item(path=self.lib_path / f"{n}.wav", length=10.0)
            item["clap_uid"] = "one-uid"  # the keys differ by file only
            if record:
                item["clap_file"] = record
            item.add(self.lib)
        keys = source_keys(self.lib)
        by_item = {item_id(i): source_key(i) for i in self.lib.items()}
        assert keys == by_item
        # the digest is part of the key only when the vector was keyed
        assert len(set(keys.values())) == 2
        assert keys[1] != keys[2] == keys[3] == keys[4]
