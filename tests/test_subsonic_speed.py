"""The fast paths beneath ``getSonicSimilarTracks`` and ``search3``
answer as the slow ones did: a track's fields read in one query are the
fields its ``Item`` gives, the radio's pool holds the candidates and
facts their items give, a song's entry is the one its ``Item`` makes,
and a page of albums chosen before its tracks are counted is the page
one query that counts every album's tracks gives."""

from __future__ import annotations

import os

import pytest
from beets.library import Item

from beets_audiofeatures.clap.search import rank
from beetsplug.audiofeatures.library_query import CLAP_FILE, item_fields
from beetsplug.audiofeatures.search.radio_rules import (
    RULE_FIELDS,
    Pool,
    track_facts,
)
from beetsplug.audiofeatures.search.vectors import LibraryVectors
from beetsplug.audiofeatures.web.subsonic.browsing import (
    ALBUM_ORDERS,
    LAST_PLAYED,
    PLAYS,
)
from beetsplug.audiofeatures.web.subsonic.catalogue import (
    ALBUM_COLUMNS,
    ALBUMS_WITH_TRACKS,
    SONG_FIELDS,
    Catalogue,
    album,
    song,
    songs,
)
from tests.test_clap_playlists import VectorLibrary, axis, towards

#: A page of albums as one query gave it before: every album's tracks
#: counted, then sorted and cut.
ONE_QUERY = (
    f"SELECT {ALBUM_COLUMNS} FROM {ALBUMS_WITH_TRACKS} WHERE {{where}} "
    "GROUP BY a.id ORDER BY {order} LIMIT ? OFFSET ?"
)


class TestFastPaths(VectorLibrary):
    @pytest.fixture(autouse=True)
    def tracks(self, _clap: None) -> None:
        """Tracks whose fields differ in every way the rules and the
        songs read: an album's tracks and singletons, Essentia's tempo
        and key or beets' own, recordings, plays, a recorded file, a
        file on disk, a stale vector and a track that is gone."""
        seed = self.track(
            "seed", axis(0), essentia_bpm=120.5, essentia_key="A minor",
            mb_trackid="rec-1", acoustid_id="acoustid-1",
            genres=["jazz", "soul"], year=1999, track=1, disc=1,
        )  # fmt: skip
        second = self.track(
            "second", towards(0, 1, 0.9), bpm=121, initial_key="Am",
            mb_trackid="rec-1", play_count=3, last_played=1.7e9, track=2,
            bitdepth=16, samplerate=44100, channels=2, bitrate=900_000,
        )  # fmt: skip
        self.track(
            "loose", towards(0, 2, 0.8), album="Loose", albumartist="Y",
            initial_key="C", bpm=90, artist="  Mixed Case  ",
        )  # fmt: skip
        self.track(
            "recorded", towards(0, 1, 0.7),
            **{CLAP_FILE: "1000 5 0123456789abcdef"},
        )  # fmt: skip
        stale = self.track("stale", towards(0, 2, 0.6))
        stale.bitrate = 128_000  # new audio: its vector is no longer current
        stale.store()
        gone = self.track("gone", towards(0, 1, 0.5))
        with self.lib.transaction() as tx:  # its vector stays in the index
            tx.mutate("DELETE FROM items WHERE id = ?", (gone.id,))
        self.lib.add_album([seed, second]).store()
        (self.lib_path / "second.flac").write_bytes(b"\0" * 1234)

    def items(self) -> list[Item]:
        return sorted(self.lib.items(), key=lambda item: item.id or 0)

    def test_a_tracks_fields_are_the_ones_its_item_gives(self):
        items = self.items()
        names = (*RULE_FIELDS, *SONG_FIELDS)
        found = item_fields(self.lib, [item.id or 0 for item in items], names)
        assert found == {
            item.id: {name: item.get(name, with_album=False) for name in names}
            for item in items
        }
        assert item_fields(self.lib, [999], names) == {}  # never a track

    def test_the_pool_holds_the_candidates_and_facts_their_items_give(self):
        store = self.vectors_store()
        index = store.index()
        vectors = LibraryVectors(self.lib, store, index)
        ranking = rank(index, axis(0)[None])
        row_of = {n: row for row, n in enumerate(index.ids.tolist())}
        slow = vectors.results(ranking, len(ranking.ids))
        pool = Pool.of(vectors, ranking, row_of)
        assert pool.ranked == [
            (item.id, score, scores) for item, score, scores in slow
        ]
        assert pool.facts == [track_facts(item) for item, _, _ in slow]
        assert [row_of[n] for n, _, _ in pool.ranked] == pool.rows.tolist()
        # the stale and the gone track were ranked and are no candidates
        assert len(ranking.ids) == len(pool.ranked) + 2

    def test_a_songs_entry_is_the_one_its_item_makes(self):
        items = self.items()
        numbers = [item.id or 0 for item in reversed(items)]
        answer = songs(self.lib, [*numbers, 999])
        assert answer == [song(item) for item in reversed(items)]
        assert answer[-2]["size"] == 1234  # "second": the file's size
        assert Catalogue(self.lib).songs(numbers) == answer

    def test_a_page_of_albums_is_the_one_query_page(self):
        for n in range(5):
            track = self.track(f"t{n}", axis(n + 3), album=f"Al {n % 3}")
            self.lib.add_album([track]).store()
        with self.lib.transaction() as tx:  # no tracks: never listed
            tx.mutate("INSERT INTO albums (album) VALUES ('Al empty')")
        catalogue = Catalogue(self.lib)
        for kind in sorted(set(ALBUM_ORDERS) - {"random"}):
            order = ALBUM_ORDERS[kind].replace("plays", PLAYS)
            order = order.replace("last", LAST_PLAYED)
            for where, params in (
                ("1", []),
                ("a.album LIKE ? OR a.albumartist LIKE ?", ["%al%", "%x%"]),
            ):
                for count, offset in ((2, 0), (2, 2), (3, 5), (100, 0)):
                    expected = [
                        album(row)
                        for row in catalogue.rows(
                            ONE_QUERY.format(where=where, order=order),
                            [*params, count, offset],
                        )
                    ]
                    answer = catalogue.albums(
                        where, params, order, count, offset
                    )
                    assert answer == expected, (kind, where, count, offset)
        # the "Al" albums with tracks, each once; never the empty one
        assert sorted(entry["name"] for entry in answer) == [
            "Al 0", "Al 0", "Al 1", "Al 1", "Al 2"
        ]  # fmt: skip

    def test_the_album_artists_are_kept_until_the_database_changes(self):
        catalogue = Catalogue(self.lib)
        kept = catalogue.album_artists()
        assert catalogue.album_artists() is kept  # no query for a page
        track = self.track("new", axis(7), albumartist="Zed")
        self.lib.add_album([track]).store()
        # a later write (a file's time moves in coarse ticks: one second)
        stat = os.stat(self.lib.path)
        os.utime(self.lib.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        assert ("Zed", 1) in catalogue.album_artists()
        assert ("Zed", 1) not in kept
